package uring

// The kernel ABI (include/uapi/linux/io_uring.h, Linux 6.18), limited to
// what this package uses.

// Setup flags (io_uring_params.flags), io_uring_setup(2).
const (
	SetupCQSize         = 1 << 3     // IORING_SETUP_CQSIZE: Params.CQEntries is valid
	SetupClamp          = 1 << 4     // IORING_SETUP_CLAMP: clamp sizes to the maximum
	SetupRDisabled      = 1 << 6     // IORING_SETUP_R_DISABLED: start disabled (Enable)
	SetupSubmitAll      = 1 << 7     // IORING_SETUP_SUBMIT_ALL: submit the rest after a failed SQE
	SetupCoopTaskrun    = 1 << 8     // IORING_SETUP_COOP_TASKRUN (5.19)
	SetupSingleIssuer   = 1 << 12    // IORING_SETUP_SINGLE_ISSUER (6.0)
	SetupDeferTaskrun   = 1 << 13    // IORING_SETUP_DEFER_TASKRUN (6.1): run task work only in Enter(GETEVENTS)
	SetupNoSQArray      = 1 << 16    // IORING_SETUP_NO_SQARRAY (6.6): SQEs are taken in ring order
	featSingleMmap      = 1 << 0     // IORING_FEAT_SINGLE_MMAP
	featNoDrop          = 1 << 1     // IORING_FEAT_NODROP
	featExtArg          = 1 << 8     // IORING_FEAT_EXT_ARG
	featMinTimeout      = 1 << 15    // IORING_FEAT_MIN_TIMEOUT (6.12)
	offSQRing           = 0          // IORING_OFF_SQ_RING
	offSQEs             = 0x10000000 // IORING_OFF_SQES
	sqNeedWakeup        = 1 << 0     // IORING_SQ_NEED_WAKEUP (SQPOLL only; unused)
	sqCQOverflow        = 1 << 1     // IORING_SQ_CQ_OVERFLOW
	sqTaskrun           = 1 << 2     // IORING_SQ_TASKRUN
	maxEntries          = 32768      // KERN_MAX_ENTRIES
	enterGetEvents      = 1 << 0     // IORING_ENTER_GETEVENTS
	enterExtArg         = 1 << 3     // IORING_ENTER_EXT_ARG (5.11)
	enterRegisteredRing = 1 << 4     // IORING_ENTER_REGISTERED_RING (5.18)
)

// Opcodes (enum io_uring_op).
const (
	OpNop         uint8 = 0
	OpPollAdd     uint8 = 6
	OpSendmsg     uint8 = 9
	OpTimeout     uint8 = 11
	OpAccept      uint8 = 13
	OpAsyncCancel uint8 = 14
	OpClose       uint8 = 19
	OpRead        uint8 = 22
	OpSend        uint8 = 26
	OpRecv        uint8 = 27
	OpShutdown    uint8 = 34
	OpSendZC      uint8 = 47
	OpSendmsgZC   uint8 = 48
)

// SQE flags (io_uring_sqe.flags).
const (
	SQEIOLink       uint8 = 1 << 2 // IOSQE_IO_LINK
	SQEIOHardlink   uint8 = 1 << 3 // IOSQE_IO_HARDLINK: run the next SQE even if this one fails
	SQEBufferSelect uint8 = 1 << 5 // IOSQE_BUFFER_SELECT: take a buffer from BufGroup
	SQECQESkip      uint8 = 1 << 6 // IOSQE_CQE_SKIP_SUCCESS
)

// Per-operation flags kept in io_uring_sqe.ioprio.
const (
	recvMultishot   = 1 << 1 // IORING_RECV_MULTISHOT (6.0)
	acceptMultishot = 1 << 0 // IORING_ACCEPT_MULTISHOT (5.19)
	pollAddMulti    = 1 << 0 // IORING_POLL_ADD_MULTI, in sqe.len
	// SendZCReportUsage asks a zero-copy send to say in its notification
	// whether the kernel had to copy after all (IORING_SEND_ZC_REPORT_USAGE).
	SendZCReportUsage = 1 << 3
)

// Cancel flags (io_uring_sqe.cancel_flags), io_uring_prep_cancel(3).
const (
	CancelAll uint32 = 1 << 0 // IORING_ASYNC_CANCEL_ALL: every match, not the first
	CancelFD  uint32 = 1 << 1 // IORING_ASYNC_CANCEL_FD: match on the file descriptor
	CancelAny uint32 = 1 << 2 // IORING_ASYNC_CANCEL_ANY
)

// CQE flags (io_uring_cqe.flags).
const (
	CQEFBuffer       uint32 = 1 << 0 // IORING_CQE_F_BUFFER: the top 16 bits name the buffer
	CQEFMore         uint32 = 1 << 1 // IORING_CQE_F_MORE: the multishot request stays armed
	CQEFSockNonempty uint32 = 1 << 2 // IORING_CQE_F_SOCK_NONEMPTY
	CQEFNotif        uint32 = 1 << 3 // IORING_CQE_F_NOTIF: a zero-copy send's notification
	CQEFBufMore      uint32 = 1 << 4 // IORING_CQE_F_BUF_MORE: the buffer stays with the kernel (incremental)
	cqeBufferShift          = 16     // IORING_CQE_BUFFER_SHIFT
	// NotifUsageZCCopied is set in a notification's Res when
	// SendZCReportUsage was asked and the kernel copied the data.
	NotifUsageZCCopied = 1 << 31
)

// io_uring_register(2) opcodes.
const (
	registerProbe       = 8
	registerEnableRings = 12
	registerRingFDs     = 20
	unregisterRingFDs   = 21
	registerPbufRing    = 22
	unregisterPbufRing  = 23
	probeOps            = 256
	opSupported         = 1 << 0 // IO_URING_OP_SUPPORTED
	// PbufRingInc: buffers of the ring are consumed incrementally (6.12).
	PbufRingInc = 2 // IOU_PBUF_RING_INC
)

// SQE is struct io_uring_sqe: 64 bytes, written by the application and read
// by the kernel at submission.
type SQE struct {
	Opcode      uint8
	Flags       uint8
	IOPrio      uint16
	Fd          int32
	Off         uint64 // off, addr2
	Addr        uint64 // addr, splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, msg_flags, accept_flags, cancel_flags, poll32_events, ...
	UserData    uint64
	BufGroup    uint16 // buf_index, buf_group
	Personality uint16
	FileIndex   uint32 // splice_fd_in, file_index, optlen, addr_len
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe: a completion, written by the kernel.
type CQE struct {
	UserData uint64
	Res      int32 // the result, or -errno
	Flags    uint32
}

// BufferID is the provided buffer a completion used (valid when Flags has
// CQEFBuffer).
func (c *CQE) BufferID() uint16 { return uint16(c.Flags >> cqeBufferShift) }

type sqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, resv1 uint32
	UserAddr                                                        uint64
}

type cqringOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, resv1 uint32
	UserAddr                                                        uint64
}

// Params is struct io_uring_params, io_uring_setup(2).
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

// getEventsArg is struct io_uring_getevents_arg (IORING_ENTER_EXT_ARG).
type getEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWaitUs uint32
	ts        uint64
}

type rsrcUpdate struct {
	offset uint32
	resv   uint32
	data   uint64
}

type probeOp struct {
	op    uint8
	resv  uint8
	flags uint16
	resv2 uint32
}

type probe struct {
	lastOp uint8
	opsLen uint8
	resv   uint16
	resv2  [3]uint32
	ops    [probeOps]probeOp
}

type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	minLeft     uint32
	resv        [5]uint32
}
