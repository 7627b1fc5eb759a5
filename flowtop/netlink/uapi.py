"""Kernel constants under their kernel names, grouped by C enum and header.

Values are written out, never numbered by position, so each one can be
checked against the header it comes from.  Friendly names live in
``flowtop.model``.
"""

# --- include/uapi/linux/netlink.h -------------------------------------------
NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
NETLINK_NETFILTER = 12

# struct nlmsghdr flags
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_ECHO = 0x08
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP_FILTERED = 0x20
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
# modifiers to NEW requests
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
# flags of NLMSG_ERROR acknowledgements
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

# reserved control message types
NLMSG_NOOP = 0x1
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLMSG_OVERRUN = 0x4
NLMSG_MIN_TYPE = 0x10

NLMSG_ALIGNTO = 4
NLMSG_HDRLEN = 16          # sizeof(struct nlmsghdr)

# struct nlattr
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF
NLA_ALIGNTO = 4
NLA_HDRLEN = 4

# socket options, level SOL_NETLINK
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_BROADCAST_ERROR = 4
NETLINK_NO_ENOBUFS = 5
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

# --- include/uapi/asm-generic/socket.h ---------------------------------------
SO_RCVBUFFORCE = 33
SO_NETNS_COOKIE = 71        # Linux 5.14+; parisc and sparc number it otherwise

# --- include/uapi/linux/netfilter/nfnetlink.h --------------------------------
NFNETLINK_V0 = 0
NFNL_SUBSYS_NONE = 0
NFNL_SUBSYS_CTNETLINK = 1
NFNL_SUBSYS_CTNETLINK_EXP = 2
NFNLGRP_CONNTRACK_NEW = 1
NFNLGRP_CONNTRACK_UPDATE = 2
NFNLGRP_CONNTRACK_DESTROY = 3
NFGENMSG_LEN = 4           # sizeof(struct nfgenmsg)

# --- include/uapi/linux/netfilter/nfnetlink_conntrack.h ----------------------
# enum cntl_msg_types
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
IPCTNL_MSG_CT_GET_CTRZERO = 3
IPCTNL_MSG_CT_GET_STATS_CPU = 4
IPCTNL_MSG_CT_GET_STATS = 5
IPCTNL_MSG_CT_GET_DYING = 6
IPCTNL_MSG_CT_GET_UNCONFIRMED = 7

# enum ctattr_type
CTA_UNSPEC = 0
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_HELP = 5
CTA_NAT_SRC = 6
CTA_TIMEOUT = 7
CTA_MARK = 8
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_USE = 11
CTA_ID = 12
CTA_NAT_DST = 13
CTA_TUPLE_MASTER = 14
CTA_SEQ_ADJ_ORIG = 15
CTA_SEQ_ADJ_REPLY = 16
CTA_SECMARK = 17
CTA_ZONE = 18
CTA_SECCTX = 19
CTA_TIMESTAMP = 20
CTA_MARK_MASK = 21
CTA_LABELS = 22
CTA_LABELS_MASK = 23
CTA_SYNPROXY = 24
CTA_FILTER = 25
CTA_STATUS_MASK = 26
CTA_TIMESTAMP_EVENT = 27

# enum ctattr_tuple
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_TUPLE_ZONE = 3

# enum ctattr_ip
CTA_IP_V4_SRC = 1
CTA_IP_V4_DST = 2
CTA_IP_V6_SRC = 3
CTA_IP_V6_DST = 4

# enum ctattr_l4proto
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID = 4
CTA_PROTO_ICMP_TYPE = 5
CTA_PROTO_ICMP_CODE = 6
CTA_PROTO_ICMPV6_ID = 7
CTA_PROTO_ICMPV6_TYPE = 8
CTA_PROTO_ICMPV6_CODE = 9

# enum ctattr_protoinfo
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_DCCP = 2
CTA_PROTOINFO_SCTP = 3

# enum ctattr_protoinfo_tcp
CTA_PROTOINFO_TCP_STATE = 1
CTA_PROTOINFO_TCP_WSCALE_ORIGINAL = 2
CTA_PROTOINFO_TCP_WSCALE_REPLY = 3
CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4
CTA_PROTOINFO_TCP_FLAGS_REPLY = 5

# enum ctattr_protoinfo_dccp
CTA_PROTOINFO_DCCP_STATE = 1
CTA_PROTOINFO_DCCP_ROLE = 2
CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ = 3

# enum ctattr_protoinfo_sctp
CTA_PROTOINFO_SCTP_STATE = 1
CTA_PROTOINFO_SCTP_VTAG_ORIGINAL = 2
CTA_PROTOINFO_SCTP_VTAG_REPLY = 3

# enum ctattr_counters
CTA_COUNTERS_PACKETS = 1
CTA_COUNTERS_BYTES = 2
CTA_COUNTERS32_PACKETS = 3
CTA_COUNTERS32_BYTES = 4
CTA_COUNTERS_PAD = 5

# enum ctattr_tstamp
CTA_TIMESTAMP_START = 1
CTA_TIMESTAMP_STOP = 2
CTA_TIMESTAMP_PAD = 3

# enum ctattr_help
CTA_HELP_NAME = 1
CTA_HELP_INFO = 2

# include/net/netfilter/nf_conntrack_helper.h, nf_conntrack_labels.h
NF_CT_HELPER_NAME_LEN = 16
NF_CT_LABELS_MAX_SIZE = 16          # bytes: 128 label bits

# enum ctattr_filter
CTA_FILTER_ORIG_FLAGS = 1
CTA_FILTER_REPLY_FLAGS = 2

# CTA_FILTER_*_FLAGS bits (net/netfilter/nf_conntrack_netlink.c, kernel >= 5.8)
CTA_FILTER_F_CTA_IP_SRC = 1 << 0
CTA_FILTER_F_CTA_IP_DST = 1 << 1
CTA_FILTER_F_CTA_TUPLE_ZONE = 1 << 2
CTA_FILTER_F_CTA_PROTO_NUM = 1 << 3
CTA_FILTER_F_CTA_PROTO_SRC_PORT = 1 << 4
CTA_FILTER_F_CTA_PROTO_DST_PORT = 1 << 5

# enum ctattr_stats_global
CTA_STATS_GLOBAL_ENTRIES = 1
CTA_STATS_GLOBAL_MAX_ENTRIES = 2

# enum ctattr_stats_cpu (IPCTNL_MSG_CT_GET_STATS_CPU: one message per CPU, be32 values)
CTA_STATS_SEARCHED = 1          # no longer used
CTA_STATS_FOUND = 2
CTA_STATS_NEW = 3               # no longer used
CTA_STATS_INVALID = 4
CTA_STATS_IGNORE = 5            # no longer used
CTA_STATS_DELETE = 6            # no longer used
CTA_STATS_DELETE_LIST = 7       # no longer used
CTA_STATS_INSERT = 8
CTA_STATS_INSERT_FAILED = 9
CTA_STATS_DROP = 10
CTA_STATS_EARLY_DROP = 11
CTA_STATS_ERROR = 12
CTA_STATS_SEARCH_RESTART = 13
CTA_STATS_CLASH_RESOLVE = 14
CTA_STATS_CHAIN_TOOLONG = 15

# --- include/uapi/linux/netfilter/nf_conntrack_common.h ----------------------
# enum ip_conntrack_status (bit numbers)
IPS_EXPECTED_BIT = 0
IPS_SEEN_REPLY_BIT = 1
IPS_ASSURED_BIT = 2
IPS_CONFIRMED_BIT = 3
IPS_SRC_NAT_BIT = 4
IPS_DST_NAT_BIT = 5
IPS_SEQ_ADJUST_BIT = 6
IPS_SRC_NAT_DONE_BIT = 7
IPS_DST_NAT_DONE_BIT = 8
IPS_DYING_BIT = 9
IPS_FIXED_TIMEOUT_BIT = 10
IPS_TEMPLATE_BIT = 11
IPS_NAT_CLASH_BIT = 12
IPS_HELPER_BIT = 13
IPS_OFFLOAD_BIT = 14
IPS_HW_OFFLOAD_BIT = 15

# --- include/uapi/linux/netfilter/nf_conntrack_tcp.h -------------------------
# enum tcp_conntrack
TCP_CONNTRACK_NONE = 0
TCP_CONNTRACK_SYN_SENT = 1
TCP_CONNTRACK_SYN_RECV = 2
TCP_CONNTRACK_ESTABLISHED = 3
TCP_CONNTRACK_FIN_WAIT = 4
TCP_CONNTRACK_CLOSE_WAIT = 5
TCP_CONNTRACK_LAST_ACK = 6
TCP_CONNTRACK_TIME_WAIT = 7
TCP_CONNTRACK_CLOSE = 8
TCP_CONNTRACK_SYN_SENT2 = 9
TCP_CONNTRACK_MAX = 10
TCP_CONNTRACK_IGNORE = 11

# --- include/uapi/linux/netfilter/nf_conntrack_sctp.h ------------------------
# enum sctp_conntrack
SCTP_CONNTRACK_NONE = 0
SCTP_CONNTRACK_CLOSED = 1
SCTP_CONNTRACK_COOKIE_WAIT = 2
SCTP_CONNTRACK_COOKIE_ECHOED = 3
SCTP_CONNTRACK_ESTABLISHED = 4
SCTP_CONNTRACK_SHUTDOWN_SENT = 5
SCTP_CONNTRACK_SHUTDOWN_RECD = 6
SCTP_CONNTRACK_SHUTDOWN_ACK_SENT = 7
SCTP_CONNTRACK_HEARTBEAT_SENT = 8
SCTP_CONNTRACK_HEARTBEAT_ACKED = 9   # gone from newer kernels; kept for older ones

# --- include/uapi/linux/netfilter/nf_conntrack_dccp.h (gone from newer kernels)
# enum ct_dccp_states
CT_DCCP_NONE = 0
CT_DCCP_REQUEST = 1
CT_DCCP_RESPOND = 2
CT_DCCP_PARTOPEN = 3
CT_DCCP_OPEN = 4
CT_DCCP_CLOSEREQ = 5
CT_DCCP_CLOSING = 6
CT_DCCP_TIMEWAIT = 7
CT_DCCP_IGNORE = 8
CT_DCCP_INVALID = 9

# --- include/uapi/linux/in.h, in6.h -----------------------------------------
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_DCCP = 33
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132
IPPROTO_UDPLITE = 136

# --- include/linux/socket.h --------------------------------------------------
AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 10

# =============================================================================
# rtnetlink (NETLINK_ROUTE): links, addresses, route lookups.  Used by
# flowtop.netlink.route.  Unlike ctnetlink, rtnetlink integers (RTA_OIF,
# RTA_TABLE, RTA_MARK, ...) are in host byte order; addresses are raw bytes.
# =============================================================================

# --- include/uapi/linux/rtnetlink.h ------------------------------------------
# message types (enum, RTM_BASE = 16)
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_NEWRULE = 32
RTM_DELRULE = 33
RTM_GETRULE = 34

RTMSG_LEN = 12             # sizeof(struct rtmsg)
RTGENMSG_LEN = 1           # sizeof(struct rtgenmsg)

# IFLA_EXT_MASK bits (RTEXT_FILTER_*)
RTEXT_FILTER_VF = 1 << 0
RTEXT_FILTER_SKIP_STATS = 1 << 3

# enum rtattr_type_t
RTA_UNSPEC = 0
RTA_DST = 1
RTA_SRC = 2
RTA_IIF = 3
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_PREFSRC = 7
RTA_METRICS = 8
RTA_MULTIPATH = 9
RTA_PROTOINFO = 10
RTA_FLOW = 11
RTA_CACHEINFO = 12
RTA_SESSION = 13
RTA_MP_ALGO = 14
RTA_TABLE = 15
RTA_MARK = 16
RTA_MFC_STATS = 17
RTA_VIA = 18
RTA_NEWDST = 19
RTA_PREF = 20
RTA_ENCAP_TYPE = 21
RTA_ENCAP = 22
RTA_EXPIRES = 23
RTA_PAD = 24
RTA_UID = 25
RTA_TTL_PROPAGATE = 26
RTA_IP_PROTO = 27
RTA_SPORT = 28
RTA_DPORT = 29
RTA_NH_ID = 30

# rtm_type
RTN_UNSPEC = 0
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTN_ANYCAST = 4
RTN_MULTICAST = 5
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
RTN_THROW = 9
RTN_NAT = 10
RTN_XRESOLVE = 11

# enum rt_scope_t
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255

# rtm_flags
RTM_F_NOTIFY = 0x100
RTM_F_CLONED = 0x200
RTM_F_EQUALIZE = 0x400
RTM_F_PREFIX = 0x800
RTM_F_LOOKUP_TABLE = 0x1000
RTM_F_FIB_MATCH = 0x2000
RTM_F_OFFLOAD = 0x4000
RTM_F_TRAP = 0x8000

# struct rtnexthop's rtnh_flags, also in rtm_flags of a dumped route
RTNH_F_DEAD = 1
RTNH_F_PERVASIVE = 2
RTNH_F_ONLINK = 4
RTNH_F_OFFLOAD = 8
RTNH_F_LINKDOWN = 16
RTNH_F_UNRESOLVED = 32

# enum rt_class_t
RT_TABLE_UNSPEC = 0
RT_TABLE_COMPAT = 252
RT_TABLE_DEFAULT = 253
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255

# include/net/flow.h (not uapi, but fixed since 3.x: the loopback device
# is the first one of every network namespace)
LOOPBACK_IFINDEX = 1

# --- include/uapi/linux/fib_rules.h -------------------------------------------
FIB_RULE_HDR_LEN = 12      # sizeof(struct fib_rule_hdr)
FRA_UNSPEC = 0
FRA_DST = 1
FRA_SRC = 2
FRA_IIFNAME = 3
FRA_GOTO = 4
FRA_PRIORITY = 6
FRA_FWMARK = 10
FRA_FLOW = 11
FRA_TUN_ID = 12
FRA_SUPPRESS_IFGROUP = 13
FRA_SUPPRESS_PREFIXLEN = 14
FRA_TABLE = 15
FRA_FWMASK = 16
FRA_OIFNAME = 17
FRA_PAD = 18
FRA_L3MDEV = 19
FRA_UID_RANGE = 20
FRA_PROTOCOL = 21
FRA_IP_PROTO = 22
FRA_SPORT_RANGE = 23
FRA_DPORT_RANGE = 24
FR_ACT_TO_TBL = 1          # fib_rule_hdr.action: look the table up

# --- include/uapi/linux/if_link.h --------------------------------------------
IFINFOMSG_LEN = 16         # sizeof(struct ifinfomsg)

# enum (IFLA_*), the ones flowtop reads
IFLA_UNSPEC = 0
IFLA_ADDRESS = 1
IFLA_BROADCAST = 2
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_EXT_MASK = 29
IFLA_ALT_IFNAME = 53

# --- include/uapi/linux/if_addr.h --------------------------------------------
IFADDRMSG_LEN = 8          # sizeof(struct ifaddrmsg)

# enum (IFA_*)
IFA_UNSPEC = 0
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_ANYCAST = 5
IFA_CACHEINFO = 6
IFA_MULTICAST = 7
IFA_FLAGS = 8
IFA_RT_PRIORITY = 9
IFA_TARGET_NETNSID = 10
IFA_PROTO = 11

# --- include/uapi/linux/neighbour.h ------------------------------------------
RTM_NEWNEIGH = 28          # rtnetlink.h message types, neighbour table
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
NDMSG_LEN = 12             # sizeof(struct ndmsg)

# enum (NDA_*), the ones flowtop reads
NDA_UNSPEC = 0
NDA_DST = 1
NDA_LLADDR = 2

# ndm_state bits (NUD_*)
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80

# --- include/uapi/linux/if.h -------------------------------------------------
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFNAMSIZ = 16

# =============================================================================
# sock_diag (NETLINK_SOCK_DIAG): the socket table, for flowtop.enrich.process
# via flowtop.netlink.sockdiag.  inet_diag_msg ports and addresses are
# network-order bytes; every other integer is in host order.
# =============================================================================

# --- include/uapi/linux/sock_diag.h ------------------------------------------
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21

# --- include/uapi/linux/inet_diag.h ------------------------------------------
INET_DIAG_REQ_V2_LEN = 56  # sizeof(struct inet_diag_req_v2)
INET_DIAG_SOCKID_LEN = 48  # sizeof(struct inet_diag_sockid)
INET_DIAG_MSG_LEN = 72     # sizeof(struct inet_diag_msg)
INET_DIAG_NOCOOKIE = 0xFFFFFFFF

# enum (INET_DIAG_*), the attributes of an inet_diag_msg
INET_DIAG_NONE = 0
INET_DIAG_MEMINFO = 1
INET_DIAG_INFO = 2
INET_DIAG_VEGASINFO = 3
INET_DIAG_CONG = 4
INET_DIAG_TOS = 5
INET_DIAG_TCLASS = 6
INET_DIAG_SKMEMINFO = 7
INET_DIAG_SHUTDOWN = 8
INET_DIAG_DCTCPINFO = 9
INET_DIAG_PROTOCOL = 10
INET_DIAG_SKV6ONLY = 11

# --- include/net/tcp_states.h (not uapi; the values ss and /proc/net use) -----
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11
TCP_NEW_SYN_RECV = 12

# --- include/uapi/linux/in.h (beyond the section above) -----------------------
IPPROTO_RAW = 255

# --- include/uapi/linux/icmp.h, icmpv6.h: request types and their replies ----
# (conntrack's invmap: a flow's reply direction carries the answer type)
ICMP_ECHOREPLY = 0
ICMP_ECHO = 8
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMPREPLY = 14
ICMP_INFO_REQUEST = 15
ICMP_INFO_REPLY = 16
ICMP_ADDRESS = 17
ICMP_ADDRESSREPLY = 18
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
ICMPV6_NI_QUERY = 139
ICMPV6_NI_REPLY = 140

# include/uapi/linux/capability.h: the capability ctnetlink asks of a
# reader and of whoever deletes flows (bit of /proc/PID/status CapEff)
CAP_NET_ADMIN = 12
