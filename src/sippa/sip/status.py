"""SIP status codes and their reason phrases (RFC 3261 §21 and later RFCs)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["StatusCode", "reason_phrase"]


class StatusCode(IntEnum):
    """Registered SIP response codes; ``.phrase`` is the default reason phrase."""

    phrase: str

    def __new__(cls, value: int, phrase: str) -> StatusCode:
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.phrase = phrase
        return obj

    # 1xx provisional (RFC 3261 §21.1)
    TRYING = 100, "Trying"
    RINGING = 180, "Ringing"
    CALL_IS_BEING_FORWARDED = 181, "Call Is Being Forwarded"
    QUEUED = 182, "Queued"
    SESSION_PROGRESS = 183, "Session Progress"
    EARLY_DIALOG_TERMINATED = 199, "Early Dialog Terminated"  # RFC 6228
    # 2xx success (§21.2)
    OK = 200, "OK"
    ACCEPTED = 202, "Accepted"  # RFC 3265
    NO_NOTIFICATION = 204, "No Notification"  # RFC 5839
    # 3xx redirection (§21.3)
    MULTIPLE_CHOICES = 300, "Multiple Choices"
    MOVED_PERMANENTLY = 301, "Moved Permanently"
    MOVED_TEMPORARILY = 302, "Moved Temporarily"
    USE_PROXY = 305, "Use Proxy"
    ALTERNATIVE_SERVICE = 380, "Alternative Service"
    # 4xx request failure (§21.4)
    BAD_REQUEST = 400, "Bad Request"
    UNAUTHORIZED = 401, "Unauthorized"
    PAYMENT_REQUIRED = 402, "Payment Required"
    FORBIDDEN = 403, "Forbidden"
    NOT_FOUND = 404, "Not Found"
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed"
    NOT_ACCEPTABLE = 406, "Not Acceptable"
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required"
    REQUEST_TIMEOUT = 408, "Request Timeout"
    GONE = 410, "Gone"
    CONDITIONAL_REQUEST_FAILED = 412, "Conditional Request Failed"  # RFC 3903
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large"
    REQUEST_URI_TOO_LONG = 414, "Request-URI Too Long"
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type"
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme"
    UNKNOWN_RESOURCE_PRIORITY = 417, "Unknown Resource-Priority"  # RFC 4412
    BAD_EXTENSION = 420, "Bad Extension"
    EXTENSION_REQUIRED = 421, "Extension Required"
    SESSION_INTERVAL_TOO_SMALL = 422, "Session Interval Too Small"  # RFC 4028
    INTERVAL_TOO_BRIEF = 423, "Interval Too Brief"
    BAD_LOCATION_INFORMATION = 424, "Bad Location Information"  # RFC 6442
    USE_IDENTITY_HEADER = 428, "Use Identity Header"  # RFC 8224
    PROVIDE_REFERRER_IDENTITY = 429, "Provide Referrer Identity"  # RFC 3892
    FLOW_FAILED = 430, "Flow Failed"  # RFC 5626
    ANONYMITY_DISALLOWED = 433, "Anonymity Disallowed"  # RFC 5079
    BAD_IDENTITY_INFO = 436, "Bad Identity-Info"
    UNSUPPORTED_CERTIFICATE = 437, "Unsupported Certificate"
    INVALID_IDENTITY_HEADER = 438, "Invalid Identity Header"
    FIRST_HOP_LACKS_OUTBOUND_SUPPORT = 439, "First Hop Lacks Outbound Support"  # RFC 5626
    MAX_BREADTH_EXCEEDED = 440, "Max-Breadth Exceeded"  # RFC 5393
    BAD_INFO_PACKAGE = 469, "Bad Info Package"  # RFC 6086
    CONSENT_NEEDED = 470, "Consent Needed"  # RFC 5360
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable"
    CALL_TRANSACTION_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist"
    LOOP_DETECTED = 482, "Loop Detected"
    TOO_MANY_HOPS = 483, "Too Many Hops"
    ADDRESS_INCOMPLETE = 484, "Address Incomplete"
    AMBIGUOUS = 485, "Ambiguous"
    BUSY_HERE = 486, "Busy Here"
    REQUEST_TERMINATED = 487, "Request Terminated"
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here"
    BAD_EVENT = 489, "Bad Event"  # RFC 3265
    REQUEST_PENDING = 491, "Request Pending"
    UNDECIPHERABLE = 493, "Undecipherable"
    SECURITY_AGREEMENT_REQUIRED = 494, "Security Agreement Required"  # RFC 3329
    # 5xx server failure (§21.5)
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error"
    NOT_IMPLEMENTED = 501, "Not Implemented"
    BAD_GATEWAY = 502, "Bad Gateway"
    SERVICE_UNAVAILABLE = 503, "Service Unavailable"
    SERVER_TIMEOUT = 504, "Server Time-out"
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported"
    MESSAGE_TOO_LARGE = 513, "Message Too Large"
    PUSH_NOTIFICATION_SERVICE_NOT_SUPPORTED = 555, "Push Notification Service Not Supported"
    PRECONDITION_FAILURE = 580, "Precondition Failure"  # RFC 3312
    # 6xx global failure (§21.6)
    BUSY_EVERYWHERE = 600, "Busy Everywhere"
    DECLINE = 603, "Decline"
    DOES_NOT_EXIST_ANYWHERE = 604, "Does Not Exist Anywhere"
    NOT_ACCEPTABLE_ANYWHERE = 606, "Not Acceptable"
    UNWANTED = 607, "Unwanted"  # RFC 8197
    REJECTED = 608, "Rejected"  # RFC 8688


_CLASS_PHRASES = {
    1: "Provisional",
    2: "Success",
    3: "Redirection",
    4: "Request Failure",
    5: "Server Failure",
    6: "Global Failure",
}


def reason_phrase(code: int) -> str:
    """The default reason phrase for ``code`` (the class name for unregistered codes)."""
    try:
        return StatusCode(code).phrase  # type: ignore[call-arg]
    except ValueError:
        return _CLASS_PHRASES.get(code // 100, "Unknown")
