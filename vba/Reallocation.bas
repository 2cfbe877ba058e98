Attribute VB_Name = "Reallocation"
' Credit reallocation buttons of the Reallocation sheet.
' Each macro only hands over to Python (crm_addin via xlwings RunPython); the rules live there.
' RunPython is the last statement: applying closes and reopens this workbook.
Option Explicit

Sub CheckReallocation()
    RunPython "import crm_addin; crm_addin.check_reallocation_request()"
End Sub

Sub ApplyReallocation()
    RunPython "import crm_addin; crm_addin.apply_reallocation()"
End Sub

Sub SuggestReallocationCuts()
    RunPython "import crm_addin; crm_addin.suggest_reallocation_cuts()"
End Sub

Sub VerifyRegister()
    RunPython "import crm_addin; crm_addin.verify_register()"
End Sub

Sub SignOff()
    RunPython "import crm_addin; crm_addin.sign_off_register()"
End Sub
