"""Linux probe back-end on the kernel's socket diagnostics (NETLINK_SOCK_DIAG).

``codec`` encodes requests and decodes replies, ``sockdiag`` talks to the kernel,
``inodes`` finds the process behind a socket inode, ``probe`` builds samples.
"""

from portwatch.probe.netlink.probe import NetlinkProbe

__all__ = ["NetlinkProbe"]
