"""Worksheet functions (xlwings UDFs) by topic; crm_addin re-exports every one of them.

Add a topic module to UDF_MODULES and crm_addin picks up its public ``crm_*`` functions
(then run ``crm-addin build-vba`` to refresh vba/xlwings_udfs.bas).

How results appear in cells (conventions kept by udfs._excel):
- vector results line up with the input column (no header) and spill; tables have a header row;
- a cell that is an error is a real Excel error value: #DIV/0! for a rate without sales,
  #N/A for a customer not in the register, #NUM! for an overflow;
- bad input gives one text cell naming the row of the selection, e.g.
  "#VALUE! row 7: amount 'abc' is not a number" ("#N/A row 2: customer 'X9' ..." when unknown);
  element-wise functions put such a message only in the cells concerned;
- blanks and trailing empty rows of a selection are ignored; an omitted optional argument takes
  the policy default, and a Policy sheet range (key | value) can be passed as ``policy``.
"""

UDF_MODULES: list[str] = ["collection", "tiers", "credit", "reallocation", "analysis", "kpis", "info", "ledger_file", "portfolio", "sales", "service"]
