; portwatch installer for Windows: a per-user install, no administrator rights needed.
;
; Wraps the PyInstaller one-folder build (installer/portwatch.spec). Build on Windows or Linux:
;   makensis -DVERSION=0.1.0 -DVERSION4=0.1.0.0 -DPAYLOAD=..\out\dist\portwatch ^
;            -DOUTFILE=..\out\portwatch-0.1.0-setup.exe installer\windows\portwatch.nsi
; VERSION/VERSION4 come from `python installer/buildinfo.py version` / `nsis-version`.
;
; Installs to %LOCALAPPDATA%\Programs\portwatch with a Start-menu shortcut; optionally a desktop
; shortcut and start at login (HKCU\...\Run, the same value the app's Settings switch uses).
; Silent installs choose those two on the command line: setup.exe /S /DESKTOP /LOGIN.
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

; /DESKTOP and /LOGIN tick the optional sections, so a silent (/S) install can have them too.
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
FunctionEnd

Function un.onInit
  !insertmacro REFUSE_WHILE_RUNNING
FunctionEnd

Section "Uninstall"
  SetShellVarContext current
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  DeleteRegValue HKCU "${RUN_KEY}" "${APP_NAME}"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"
  DeleteRegKey HKCU "${AUMID_KEY}"
  ; Only what the installer put there: never `RMDir /r $INSTDIR`, which could be a user folder.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\portwatch-cli.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
