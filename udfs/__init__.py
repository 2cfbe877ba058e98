"""Worksheet functions (xlwings UDFs) by topic; crm_addin re-exports every one of them.

Add a topic module to UDF_MODULES and crm_addin picks up its public ``crm_*`` functions.
"""

UDF_MODULES: list[str] = ["collection", "tiers", "credit", "reallocation", "analysis", "info"]
