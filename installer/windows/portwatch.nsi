; portwatch installer for Windows: a per-user install, no administrator rights needed.
;
; Wraps the PyInstaller one-folder build (installer/portwatch.spec). Build on Windows or Linux:
;   makensis -DVERSION=0.1.0 -DVERSION4=0.1.0.0 -DPAYLOAD=..\out\dist\portwatch ^
;            -DOUTFILE=..\out\portwatch-0.1.0-setup.exe installer\windows\portwatch.nsi
; VERSION/VERSION4 come from `python installer/buildinfo.py version` / `nsis-version`.
;
; Installs to %LOCALAPPDATA%\Programs\portwatch with a Start-menu shortcut and its folder on the
; user's PATH (so `portwatch-cli scan` works in a terminal); optionally a desktop shortcut and
; start at login (HKCU\...\Run, the same value the app's Settings switch uses). Silent installs
; choose on the command line: setup.exe /S /DESKTOP /LOGIN /NOPATH.
; The uninstaller removes what the installer made and leaves the user's watch list and history.

Unicode true
SetCompressor /SOLID lzma
; Sharp text on high-DPI screens (Windows scales a DPI-unaware installer up, blurred).
ManifestDPIAware true

!ifndef VERSION
  !error "pass -DVERSION=x.y.z (python installer/buildinfo.py version)"
!endif
!ifndef VERSION4
  !error "pass -DVERSION4=x.y.z.0 (python installer/buildinfo.py nsis-version)"
!endif
!ifndef PAYLOAD
  !error "pass -DPAYLOAD=<folder of the PyInstaller one-folder build>"
!endif
!ifndef OUTFILE
  !define OUTFILE "portwatch-${VERSION}-setup.exe"
!endif

!define APP_NAME "portwatch"
!define APP_EXE "portwatch.exe"
!define PUBLISHER "The portwatch maintainers"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${APP_NAME}"
; The AppUserModelID the app sets on itself (portwatch.platform_windows.APP_USER_MODEL_ID):
; registered here so Windows names portwatch, with its icon, as the sender of its notifications.
!define AUMID "io.github.portwatch.Portwatch"
!define AUMID_KEY "Software\Classes\AppUserModelId\${AUMID}"
; The user's own PATH (what "Edit environment variables for your account" edits); the
; uninstall entry remembers the exact folder added there, so only that one is ever removed.
!define ENV_KEY "Environment"
!define PATH_ENTRY_VALUE "PathEntry"

Name "${APP_NAME}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
ShowInstDetails nevershow
ShowUninstDetails nevershow

VIProductVersion "${VERSION4}"
VIFileVersion "${VERSION4}"
VIAddVersionKey /LANG=1033 "ProductName" "${APP_NAME}"
VIAddVersionKey /LANG=1033 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=1033 "FileDescription" "${APP_NAME} installer"
VIAddVersionKey /LANG=1033 "CompanyName" "${PUBLISHER}"
VIAddVersionKey /LANG=1033 "LegalCopyright" "MIT License, ${PUBLISHER}"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "Sections.nsh"
!include "Win\COM.nsh"
!include "Win\Propkey.nsh"
!include "WinMessages.nsh"

!define MUI_ICON "..\..\icons\portwatch.ico"
!define MUI_UNICON "..\..\icons\portwatch.ico"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME} now"

!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; A running copy keeps its program file locked (Windows cannot open a running image for
; writing): ask the user to quit it instead of replacing or removing files half-way. Silent
; runs (/S) give up at once, with exit code 2, and leave everything as it was.
!macro REFUSE_WHILE_RUNNING
  ${Do}
    ClearErrors
    FileOpen $0 "$INSTDIR\${APP_EXE}" a
    ${If} ${Errors}
    ${AndIf} ${FileExists} "$INSTDIR\${APP_EXE}"
      ${If} ${Cmd} `MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION "Please quit ${APP_NAME} (tray icon, Quit), then press Retry." /SD IDCANCEL IDCANCEL`
        SetErrorLevel 2
        Quit
      ${EndIf}
    ${Else}
      FileClose $0
      ${Break}
    ${EndIf}
  ${Loop}
!macroend

;; Windows files a toast under the AppUserModelID of the Start-menu shortcut that started the
; program; the app sets the same ID on itself (SetCurrentProcessExplicitAppUserModelID), so the
; shortcut must carry it too, or toasts and taskbar grouping fall back to the exe's name.
; Stack: the shortcut's path. IShellLink loaded from the file, PKEY_AppUserModel_ID set
; through its IPropertyStore, saved back.
!macro SET_SHORTCUT_AUMID prefix
Function ${prefix}SetShortcutAumid
  Exch $R0
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  Push $5
  !insertmacro ComHlpr_CreateInProcInstance ${CLSID_ShellLink} ${IID_IShellLink} r0 ""
  ${If} $0 P<> 0
    ${IUnknown::QueryInterface} $0 '("${IID_IPersistFile}",.r1)'
    ${If} $1 P<> 0
      ${IPersistFile::Load} $1 '("$R0",${STGM_READWRITE}).r2'
      ${If} $2 = 0
        ${IUnknown::QueryInterface} $0 '("${IID_IPropertyStore}",.r2)'
        ${If} $2 P<> 0
          System::Call '*(&w64 "${AUMID}")p.r5'
          System::Call '*${SYSSTRUCT_PROPERTYKEY}(${PKEY_AppUserModel_ID})p.r3'
          System::Call '*${SYSSTRUCT_PROPVARIANT}(${VT_LPWSTR},,p r5)p.r4'
          ${IPropertyStore::SetValue} $2 '($3,$4)'
          ${IPropertyStore::Commit} $2 ""
          System::Free $3
          System::Free $4
          System::Free $5
          ${IUnknown::Release} $2 ""
          ${IPersistFile::Save} $1 '("$R0",1)'
        ${EndIf}
      ${EndIf}
      ${IUnknown::Release} $1 ""
    ${EndIf}
    ${IUnknown::Release} $0 ""
  ${EndIf}
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
  Pop $R0
FunctionEnd
!macroend
!insertmacro SET_SHORTCUT_AUMID ""

; The user's PATH as a list of folders separated by ";", edited one entry at a time: every
; other entry, empty ones and the order included, is written back as it was, and the value
; keeps its type (REG_EXPAND_SZ, as Windows makes it, or REG_SZ). NSIS holds at most
; ${NSIS_MAX_STRLEN} characters in a string: a longer PATH is never read (it would come back
; cut short); it is left alone and the setup says so.
!macro USER_PATH_FUNCTIONS prefix
; Out: $R1 = the value's type (0: there is no PATH; 1 REG_SZ; 2 REG_EXPAND_SZ; else not a
; string), $R2 = its size in characters.
Function ${prefix}UserPathInfo
  Push $0
  ; RegGetValueW(HKEY_CURRENT_USER, "Environment", "Path", RRF_RT_ANY | RRF_NOEXPAND, ...),
  ; no buffer: only the type and size. HKEY_CURRENT_USER as a sign-extended handle.
  System::Call 'advapi32::RegGetValueW(p -2147483647, w "${ENV_KEY}", w "Path", i 0x1000FFFF, *i 0 r11, p 0, *i 0 r12) i .r0'
  ${If} $0 <> 0
    StrCpy $R1 0
    StrCpy $R2 0
  ${Else}
    IntOp $R2 $R2 / 2
  ${EndIf}
  Pop $0
FunctionEnd

; In: $R0 = PATH, $R3 = the folder. Out: $R4 = PATH without that folder (compared without
; case and a trailing "\", as Windows compares them), $R5 = how many entries were removed.
Function ${prefix}PathWithout
  Push $6
  Push $7
  Push $8
  Push $9
  StrCpy $R4 ""
  StrCpy $R5 0
  StrCpy $6 $R0
  StrCpy $9 0 ; entries kept so far
  ${Do}
    ; $7 = the entry up to the next ";", $6 = what follows it.
    StrCpy $8 0
    ${Do}
      StrCpy $7 $6 1 $8
      ${If} $7 == ""
      ${OrIf} $7 == ";"
        ${ExitDo}
      ${EndIf}
      IntOp $8 $8 + 1
    ${Loop}
    StrCpy $7 $6 $8
    IntOp $8 $8 + 1
    StrCpy $6 $6 "" $8
    ${If} $7 == $R3
    ${OrIf} $7 == "$R3\"
      IntOp $R5 $R5 + 1
    ${Else}
      ${If} $9 > 0
        StrCpy $R4 "$R4;"
      ${EndIf}
      StrCpy $R4 "$R4$7"
      IntOp $9 $9 + 1
    ${EndIf}
  ${LoopUntil} $6 == ""
  ; A ";" at the very end was one more (empty) entry.
  StrCpy $7 $R0 1 -1
  ${If} $7 == ";"
    StrCpy $R4 "$R4;"
  ${EndIf}
  Pop $9
  Pop $8
  Pop $7
  Pop $6
FunctionEnd

; Writes $R4 back as the user's PATH with type $R1 and tells running programs (Explorer
; hands the new PATH to the terminals it starts next; open ones keep theirs).
Function ${prefix}WriteUserPath
  ${If} $R4 == ""
    ; Nothing but portwatch's folder was there: no PATH of the user's own, as before.
    DeleteRegValue HKCU "${ENV_KEY}" "Path"
  ${ElseIf} $R1 == 1
    WriteRegStr HKCU "${ENV_KEY}" "Path" $R4
  ${Else}
    WriteRegExpandStr HKCU "${ENV_KEY}" "Path" $R4
  ${EndIf}
  SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=5000
FunctionEnd

; Removes the folder this setup added (recorded in the uninstall entry), if it did.
Function ${prefix}RemoveFromUserPath
  ReadRegStr $R3 HKCU "${UNINSTALL_KEY}" "${PATH_ENTRY_VALUE}"
  ${If} $R3 == ""
    Return
  ${EndIf}
  Call ${prefix}UserPathInfo
  ${If} $R1 = 1
  ${OrIf} $R1 = 2
    ${If} $R2 >= ${NSIS_MAX_STRLEN}
      DetailPrint "PATH is too long to edit here: remove $R3 from it by hand."
    ${Else}
      ReadRegStr $R0 HKCU "${ENV_KEY}" "Path"
      Call ${prefix}PathWithout
      ${If} $R5 > 0
        Call ${prefix}WriteUserPath
      ${EndIf}
    ${EndIf}
  ${EndIf}
  DeleteRegValue HKCU "${UNINSTALL_KEY}" "${PATH_ENTRY_VALUE}"
FunctionEnd
!macroend
!insertmacro USER_PATH_FUNCTIONS ""
!insertmacro USER_PATH_FUNCTIONS "un."

Section "${APP_NAME} (with a Start-menu shortcut)" SecMain
  SectionIn RO
  SetShellVarContext current
  SetOutPath "$INSTDIR"
  !insertmacro REFUSE_WHILE_RUNNING
  ; Replace the program files, not merge: libraries from an older build must not linger.
  RMDir /r "$INSTDIR\_internal"
  File /r "${PAYLOAD}\*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateShortCut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
  Push "$SMPROGRAMS\${APP_NAME}.lnk"
  Call SetShortcutAumid

  ; Listed in Settings > Apps for this user only.
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1

  WriteRegStr HKCU "${AUMID_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${AUMID_KEY}" "IconUri" "$INSTDIR\${APP_EXE}"
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  SetShellVarContext current
  CreateShortCut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
  Push "$DESKTOP\${APP_NAME}.lnk"
  Call SetShortcutAumid
SectionEnd

Section /o "Start ${APP_NAME} when I log in" SecLogin
  ; Same value name and command as portwatch.config.autostart, so the app's Settings agree.
  WriteRegStr HKCU "${RUN_KEY}" "${APP_NAME}" '"$INSTDIR\${APP_EXE}" --minimized'
SectionEnd

Section "Add portwatch-cli to my PATH (for terminals)" SecPath
  ; portwatch-cli.exe is the console program: `portwatch-cli scan` in a new terminal.
  Call UserPathInfo
  ${If} $R1 <> 0
  ${AndIf} $R1 <> 1
  ${AndIf} $R1 <> 2
    DetailPrint "PATH is not a text value: add $INSTDIR to it by hand."
    Return
  ${EndIf}
  StrLen $0 "$INSTDIR"
  IntOp $0 $0 + $R2
  ${If} $0 >= ${NSIS_MAX_STRLEN}
    DetailPrint "PATH is too long to edit here: add $INSTDIR to it by hand."
    Return
  ${EndIf}
  StrCpy $R0 ""
  ${If} $R1 <> 0
    ReadRegStr $R0 HKCU "${ENV_KEY}" "Path"
  ${EndIf}
  StrCpy $R3 "$INSTDIR"
  Call PathWithout
  ${If} $R5 > 0
    ; Already there (a reinstall, an upgrade, or the user's own entry): never twice.
    Return
  ${EndIf}
  ${If} $R0 == ""
    StrCpy $R4 "$INSTDIR"
  ${Else}
    StrCpy $0 $R0 1 -1
    ${If} $0 == ";"
      StrCpy $R4 "$R0$INSTDIR"
    ${Else}
      StrCpy $R4 "$R0;$INSTDIR"
    ${EndIf}
  ${EndIf}
  ${If} $R1 = 0
    StrCpy $R1 2
  ${EndIf}
  Call WriteUserPath
  WriteRegStr HKCU "${UNINSTALL_KEY}" "${PATH_ENTRY_VALUE}" "$INSTDIR"
SectionEnd

; Reinstalled without the PATH choice: the entry an earlier install added goes.
Section "-PathChoiceUndone"
  ${IfNot} ${SectionIsSelected} ${SecPath}
    Call RemoveFromUserPath
  ${EndIf}
SectionEnd

; /DESKTOP and /LOGIN tick the optional sections and /NOPATH unticks the PATH entry, so a
; silent (/S) install can choose them too.
Function .onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/DESKTOP" $R1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${SecDesktop}
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/LOGIN" $R1
  ${IfNot} ${Errors}
    !insertmacro SelectSection ${SecLogin}
  ${EndIf}
  ; The PATH entry is on unless /NOPATH says otherwise.
  ClearErrors
  ${GetOptions} $R0 "/NOPATH" $R1
  ${IfNot} ${Errors}
    !insertmacro UnselectSection ${SecPath}
  ${EndIf}
FunctionEnd

Function un.onInit
  !insertmacro REFUSE_WHILE_RUNNING
FunctionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${APP_NAME}"
  ; Before the uninstall entry goes: it names the PATH entry to remove.
  Call un.RemoveFromUserPath
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "${AUMID_KEY}"
  ; Only what the installer put there: never `RMDir /r $INSTDIR`, which could be a user folder.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\portwatch-cli.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
