"""Windows Authenticode through ctypes: WinVerifyTrust, then the signer's certificate.

No PowerShell and no subprocess: ``WinVerifyTrust`` verifies the embedded signature
and its chain (without user interface and without network revocation fetches, which
could hang a poll), then ``CryptQueryObject`` and ``CertFindCertificateInStore`` read
the leaf certificate for its subject, issuer and SHA-1 thumbprint.

The module imports on any OS (structures only); the Windows libraries are loaded on
the first call, and on other systems the call answers FAILED.
"""

from __future__ import annotations

import ctypes
import sys
from ctypes import wintypes
from typing import Any

from portwatch.core.text import clean
from portwatch.core.types import SignerInfo
from portwatch.probe.signature import FAILED, INVALID, UNSIGNED, VALID, SignatureCheck

# WinVerifyTrust constants (wintrust.h).
WTD_UI_NONE = 2
WTD_REVOKE_NONE = 0
WTD_CHOICE_FILE = 1
WTD_STATEACTION_VERIFY = 1
WTD_STATEACTION_CLOSE = 2
WTD_REVOCATION_CHECK_NONE = 0x10
WTD_CACHE_ONLY_URL_RETRIEVAL = 0x1000
# HRESULTs meaning "there is no signature to check" rather than "a bad signature".
TRUST_E_NOSIGNATURE = 0x800B0100
TRUST_E_SUBJECT_FORM_UNKNOWN = 0x800B0003
TRUST_E_PROVIDER_UNKNOWN = 0x800B0001
_NO_SIGNATURE = frozenset({TRUST_E_NOSIGNATURE, TRUST_E_SUBJECT_FORM_UNKNOWN})
# crypt32 constants (wincrypt.h).
CERT_QUERY_OBJECT_FILE = 1
CERT_QUERY_CONTENT_FLAG_PKCS7_SIGNED_EMBED = 1 << 10
CERT_QUERY_FORMAT_FLAG_BINARY = 1 << 1
CMSG_SIGNER_INFO_PARAM = 6
X509_ASN_ENCODING = 0x1
PKCS_7_ASN_ENCODING = 0x10000
CERT_FIND_SUBJECT_CERT = 11 << 16
CERT_NAME_RDN_TYPE = 2
CERT_NAME_ISSUER_FLAG = 1
CERT_X500_NAME_STR = 3
CERT_SHA1_HASH_PROP_ID = 3


class GUID(ctypes.Structure):
    _fields_ = [
        ("Data1", wintypes.DWORD),
        ("Data2", wintypes.WORD),
        ("Data3", wintypes.WORD),
        ("Data4", ctypes.c_ubyte * 8),
    ]


# WINTRUST_ACTION_GENERIC_VERIFY_V2 {00AAC56B-CD44-11d0-8CC2-00C04FC295EE}
def _generic_verify_v2() -> GUID:
    return GUID(
        0x00AAC56B,
        0xCD44,
        0x11D0,
        (ctypes.c_ubyte * 8)(0x8C, 0xC2, 0x00, 0xC0, 0x4F, 0xC2, 0x95, 0xEE),
    )


class WINTRUST_FILE_INFO(ctypes.Structure):
    _fields_ = [
        ("cbStruct", wintypes.DWORD),
        ("pcwszFilePath", wintypes.LPCWSTR),
        ("hFile", wintypes.HANDLE),
        ("pgKnownSubject", ctypes.POINTER(GUID)),
    ]


class WINTRUST_DATA(ctypes.Structure):
    _fields_ = [
        ("cbStruct", wintypes.DWORD),
        ("pPolicyCallbackData", ctypes.c_void_p),
        ("pSIPClientData", ctypes.c_void_p),
        ("dwUIChoice", wintypes.DWORD),
        ("fdwRevocationChecks", wintypes.DWORD),
        ("dwUnionChoice", wintypes.DWORD),
        ("pFile", ctypes.POINTER(WINTRUST_FILE_INFO)),
        ("dwStateAction", wintypes.DWORD),
        ("hWVTStateData", wintypes.HANDLE),
        ("pwszURLReference", wintypes.LPCWSTR),
        ("dwProvFlags", wintypes.DWORD),
        ("dwUIContext", wintypes.DWORD),
        ("pSignatureSettings", ctypes.c_void_p),
    ]


class CRYPT_BLOB(ctypes.Structure):
    _fields_ = [("cbData", wintypes.DWORD), ("pbData", ctypes.POINTER(ctypes.c_ubyte))]


class CRYPT_ALGORITHM_IDENTIFIER(ctypes.Structure):
    _fields_ = [("pszObjId", ctypes.c_char_p), ("Parameters", CRYPT_BLOB)]


class CMSG_SIGNER_INFO(ctypes.Structure):
    _fields_ = [
        ("dwVersion", wintypes.DWORD),
        ("Issuer", CRYPT_BLOB),
        ("SerialNumber", CRYPT_BLOB),
        ("HashAlgorithm", CRYPT_ALGORITHM_IDENTIFIER),
        ("HashEncryptionAlgorithm", CRYPT_ALGORITHM_IDENTIFIER),
        ("EncryptedHash", CRYPT_BLOB),
        ("AuthAttrs", CRYPT_BLOB),  # CRYPT_ATTRIBUTES: a count and a pointer, same layout
        ("UnauthAttrs", CRYPT_BLOB),
    ]


class CRYPT_BIT_STRING(ctypes.Structure):
    _fields_ = [
        ("cbData", wintypes.DWORD),
        ("pbData", ctypes.POINTER(ctypes.c_ubyte)),
        ("cUnusedBits", wintypes.DWORD),
    ]


class CERT_PUBLIC_KEY_INFO(ctypes.Structure):
    _fields_ = [("Algorithm", CRYPT_ALGORITHM_IDENTIFIER), ("PublicKey", CRYPT_BIT_STRING)]


class CERT_INFO(ctypes.Structure):
    # Only Issuer and SerialNumber are read by CERT_FIND_SUBJECT_CERT; the rest is
    # laid out so the offsets are right.
    _fields_ = [
        ("dwVersion", wintypes.DWORD),
        ("SerialNumber", CRYPT_BLOB),
        ("SignatureAlgorithm", CRYPT_ALGORITHM_IDENTIFIER),
        ("Issuer", CRYPT_BLOB),
        ("NotBefore", wintypes.FILETIME),
        ("NotAfter", wintypes.FILETIME),
        ("Subject", CRYPT_BLOB),
        ("SubjectPublicKeyInfo", CERT_PUBLIC_KEY_INFO),
        ("IssuerUniqueId", CRYPT_BIT_STRING),
        ("SubjectUniqueId", CRYPT_BIT_STRING),
        ("cExtension", wintypes.DWORD),
        ("rgExtension", ctypes.c_void_p),
    ]


def state_for(result: int) -> str:
    """What a WinVerifyTrust result means: VALID, UNSIGNED or INVALID (the decision,
    separate from the call so it is tested everywhere)."""
    code = result & 0xFFFFFFFF
    if code == 0:
        return VALID
    if code in _NO_SIGNATURE:
        return UNSIGNED
    return INVALID


def _libraries() -> tuple[Any, Any]:
    if not sys.platform.startswith("win"):
        raise OSError("Authenticode exists only on Windows")
    windll: Any = getattr(ctypes, "WinDLL")  # noqa: B009 - absent from ctypes off Windows
    return windll("wintrust", use_last_error=True), windll("crypt32", use_last_error=True)


def verify_trust(path: str) -> int:
    """WinVerifyTrust on the file's embedded signature; the raw result (0 is valid)."""
    wintrust, _ = _libraries()
    file_info = WINTRUST_FILE_INFO(ctypes.sizeof(WINTRUST_FILE_INFO), path, None, None)
    data = WINTRUST_DATA()
    data.cbStruct = ctypes.sizeof(WINTRUST_DATA)
    data.dwUIChoice = WTD_UI_NONE
    data.fdwRevocationChecks = WTD_REVOKE_NONE
    data.dwUnionChoice = WTD_CHOICE_FILE
    data.pFile = ctypes.pointer(file_info)
    data.dwStateAction = WTD_STATEACTION_VERIFY
    # No network: a revocation fetch could hang a poll for a long time.
    data.dwProvFlags = WTD_REVOCATION_CHECK_NONE | WTD_CACHE_ONLY_URL_RETRIEVAL
    action = _generic_verify_v2()
    call = wintrust.WinVerifyTrust
    call.argtypes = [wintypes.HWND, ctypes.POINTER(GUID), ctypes.c_void_p]
    call.restype = ctypes.c_long
    hwnd_no_ui = wintypes.HWND(-1)  # INVALID_HANDLE_VALUE: never show a window
    try:
        return int(call(hwnd_no_ui, ctypes.byref(action), ctypes.byref(data)))
    finally:
        data.dwStateAction = WTD_STATEACTION_CLOSE
        call(hwnd_no_ui, ctypes.byref(action), ctypes.byref(data))


def read_signer(path: str) -> SignerInfo | None:
    """The leaf certificate of the file's embedded signature: subject, issuer and
    thumbprint (call only after :func:`verify_trust` said it is valid)."""
    _, crypt32 = _libraries()
    encoding = wintypes.DWORD()
    content = wintypes.DWORD()
    fmt = wintypes.DWORD()
    store = wintypes.HANDLE()
    msg = wintypes.HANDLE()
    ok = crypt32.CryptQueryObject(
        CERT_QUERY_OBJECT_FILE,
        ctypes.c_wchar_p(path),
        CERT_QUERY_CONTENT_FLAG_PKCS7_SIGNED_EMBED,
        CERT_QUERY_FORMAT_FLAG_BINARY,
        0,
        ctypes.byref(encoding),
        ctypes.byref(content),
        ctypes.byref(fmt),
        ctypes.byref(store),
        ctypes.byref(msg),
        None,
    )
    if not ok:
        return None
    context = None
    try:
        size = wintypes.DWORD()
        if not crypt32.CryptMsgGetParam(msg, CMSG_SIGNER_INFO_PARAM, 0, None, ctypes.byref(size)):
            return None
        buffer = ctypes.create_string_buffer(size.value)
        if not crypt32.CryptMsgGetParam(msg, CMSG_SIGNER_INFO_PARAM, 0, buffer, ctypes.byref(size)):
            return None
        signer_info = ctypes.cast(buffer, ctypes.POINTER(CMSG_SIGNER_INFO)).contents
        wanted = CERT_INFO()
        wanted.Issuer = signer_info.Issuer
        wanted.SerialNumber = signer_info.SerialNumber
        crypt32.CertFindCertificateInStore.restype = ctypes.c_void_p
        context = crypt32.CertFindCertificateInStore(
            store,
            X509_ASN_ENCODING | PKCS_7_ASN_ENCODING,
            0,
            CERT_FIND_SUBJECT_CERT,
            ctypes.byref(wanted),
            None,
        )
        if not context:
            return None
        subject = _name(crypt32, context, 0)
        issuer = _name(crypt32, context, CERT_NAME_ISSUER_FLAG)
        thumbprint = _thumbprint(crypt32, context)
        if not subject:
            return None
        return SignerInfo("windows", subject=subject, issuer=issuer, thumbprint=thumbprint)
    finally:
        if context:
            crypt32.CertFreeCertificateContext(ctypes.c_void_p(context))
        crypt32.CertCloseStore(store, 0)
        crypt32.CryptMsgClose(msg)


def _name(crypt32: Any, context: int, flags: int) -> str | None:
    kind = wintypes.DWORD(CERT_X500_NAME_STR)
    get = crypt32.CertGetNameStringW
    get.argtypes = [
        ctypes.c_void_p,
        wintypes.DWORD,
        wintypes.DWORD,
        ctypes.c_void_p,
        wintypes.LPWSTR,
        wintypes.DWORD,
    ]
    get.restype = wintypes.DWORD
    size = get(context, CERT_NAME_RDN_TYPE, flags, ctypes.byref(kind), None, 0)
    if size <= 1:
        return None
    buffer = ctypes.create_unicode_buffer(size)
    get(context, CERT_NAME_RDN_TYPE, flags, ctypes.byref(kind), buffer, size)
    return clean(buffer.value) or None


def _thumbprint(crypt32: Any, context: int) -> str | None:
    size = wintypes.DWORD(20)
    buffer = (ctypes.c_ubyte * 20)()
    get = crypt32.CertGetCertificateContextProperty
    get.argtypes = [
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.c_void_p,
        ctypes.POINTER(wintypes.DWORD),
    ]
    if not get(context, CERT_SHA1_HASH_PROP_ID, buffer, ctypes.byref(size)):
        return None
    return bytes(buffer[: size.value]).hex().upper()


def authenticode_check(path: str) -> SignatureCheck:
    """The Authenticode verdict for the file at ``path`` (the verifier's backend)."""
    try:
        # Held open across both calls: Windows then refuses to rename or delete the
        # file, so the certificate read is the one that was verified.
        with open(path, "rb"):
            state = state_for(verify_trust(path))
            if state != VALID:
                return SignatureCheck(state)
            signer = read_signer(path)
    except (OSError, AttributeError, ValueError) as exc:
        return SignatureCheck(FAILED, detail=str(exc))
    if signer is None:
        return SignatureCheck(FAILED, detail="the signer's certificate could not be read")
    return SignatureCheck(VALID, signer)


__all__ = ["INVALID", "UNSIGNED", "authenticode_check", "read_signer", "state_for", "verify_trust"]
