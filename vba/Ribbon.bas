Attribute VB_Name = "Ribbon"
' Callbacks of the workbook's "CRM" ribbon tab (customUI/customUI14.xml). Excel calls each with
' the button pressed; each only hands over to the macro of the same name without "On", so the
' ribbon and Alt+F8 run the same code.
Option Explicit

Sub OnRefreshRegister(control As IRibbonControl)
    RefreshRegister
End Sub

Sub OnBuildReview(control As IRibbonControl)
    BuildReview
End Sub

Sub OnCheckReallocation(control As IRibbonControl)
    CheckReallocation
End Sub

Sub OnApplyReallocation(control As IRibbonControl)
    ApplyReallocation
End Sub

Sub OnSuggestReallocationCuts(control As IRibbonControl)
    SuggestReallocationCuts
End Sub

Sub OnVerifyRegister(control As IRibbonControl)
    VerifyRegister
End Sub

Sub OnSignOff(control As IRibbonControl)
    SignOff
End Sub
