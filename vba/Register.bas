Attribute VB_Name = "Register"
' Customer register macros. The buttons hand over to Python (crm_addin via xlwings
' RunPython); the rules live there. The functions below them are plain VBA checks that need
' no Python, so they also work where the add-in is not installed.
Option Explicit

' Refresh the Register from the Ledger sheet: facts and tiers updated, lines and inputs kept.
Sub RefreshRegister()
    RunPython "import crm_addin; crm_addin.refresh_register()"
End Sub

' Build the yearly review (new budget and lines) as a new workbook beside this one.
Sub BuildReview()
    RunPython "import crm_addin; crm_addin.build_review()"
End Sub

' Number of customers whose open balance is above their credit line.
Function CountOverLimit() As Long
    Dim ws As Object, r As Long, n As Long, lineCol As Long, balCol As Long
    Set ws = ThisWorkbook.Worksheets("Register")
    lineCol = HeaderColumn(ws, "Credit line")
    balCol = HeaderColumn(ws, "Open balance")
    If lineCol = 0 Or balCol = 0 Then Exit Function
    r = 2
    Do While Len(CStr(ws.Cells(r, 1).Value)) > 0
        If Num(ws.Cells(r, lineCol).Value) > 0 And Num(ws.Cells(r, balCol).Value) > Num(ws.Cells(r, lineCol).Value) Then n = n + 1
        r = r + 1
    Loop
    CountOverLimit = n
End Function

' Sum of the Change column of the Reallocation request, in cents (0 when the batch is balanced).
Function RequestChangeCents() As Double
    Dim ws As Object, r As Long, headerRow As Long, total As Double
    Set ws = ThisWorkbook.Worksheets("Reallocation")
    For r = 1 To 100
        If InStr(1, CStr(ws.Cells(r, 2).Value), "Change", vbTextCompare) > 0 Then headerRow = r: Exit For
    Next r
    If headerRow = 0 Then Exit Function
    r = headerRow + 1
    Do While Len(CStr(ws.Cells(r, 1).Value)) > 0 Or Len(CStr(ws.Cells(r, 2).Value)) > 0
        total = total + Round(Num(ws.Cells(r, 2).Value) * 100, 0)
        r = r + 1
    Loop
    RequestChangeCents = total
End Function

' Column of the header cell ending with the English label (headers read "<Chinese> <English>").
Function HeaderColumn(ws As Object, english As String) As Long
    Dim c As Long, text As String
    For c = 1 To 60
        text = CStr(ws.Cells(1, c).Value)
        If Len(text) >= Len(english) Then
            If StrComp(Right(text, Len(english)), english, vbTextCompare) = 0 Then HeaderColumn = c: Exit Function
        End If
    Next c
End Function

' A cell as a number: blanks and text count as 0 (no locale-dependent text conversion).
Function Num(v As Variant) As Double
    If VarType(v) = vbDouble Or VarType(v) = vbInteger Or VarType(v) = vbLong Or VarType(v) = vbCurrency Or VarType(v) = vbSingle Then Num = CDbl(v)
End Function
