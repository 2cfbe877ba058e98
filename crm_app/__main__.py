import sys

from crm_app.cli.main import main

sys.exit(main())
