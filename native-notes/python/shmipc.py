"""A Python peer of ShmIpc Queues and Pipes, standard library only, written from native-notes/LAYOUT.md.

    q = shmipc.Queue.open("jobs");  q.put(b"hello");  data = q.get(timeout=1.0)
    c = shmipc.Pipe.connect("chat"); c.send_bytes(b"ping"); reply = c.recv_bytes(timeout=1.0)

Atomics (see native-notes/INTEROP-PYTHON.md): Python has no compare-and-swap, fence or acquire/release
access. This module gets them without compiling anything:
  * read-modify-writes (CAS, fetch-add, exchange) by calling GCC's runtime library libatomic
    (``__atomic_compare_exchange_8`` & co., seq_cst) through ctypes; where libatomic is missing, on x86-64,
    by four hand-assembled ``lock``-prefixed instructions placed in an executable page (mmap + mprotect);
  * single-word loads and stores: on x86-64 a native-format ``struct`` access of an aligned word, which is
    one ``mov`` (x86 loads are acquire and stores release in hardware, and the interpreter cannot reorder
    across statements); on other architectures through libatomic with acquire/release orders;
  * the notifier's full fence: the seq_cst fetch-add of 0 on the sleeper count, which also reads it.
"""

import ctypes
import ctypes.util
import fcntl
import mmap
import os
import platform
import queue as _queue
import struct
import sys
import threading
import time

__all__ = ["Queue", "Pipe", "Connection", "SharedMemory", "Lock", "Event", "Semaphore", "Counter", "Array", "Value", "Condition", "Barrier",
           "ShmIpcError", "InvalidSegmentError", "CorruptionError", "PeerClosedError", "ShutDown", "LockAbandonedError", "BrokenBarrierError"]


class ShmIpcError(OSError):
    """Base of this module's errors."""


class InvalidSegmentError(ShmIpcError):
    """Opening refused (LAYOUT.md §3): .reason is Truncated, NotInitialized, ForeignFormat,
    UnsupportedVersion, Corrupted or WrongKind."""

    def __init__(self, name, reason, detail):
        super().__init__(f"segment '{name}' is not usable ({reason}): {detail}")
        self.reason = reason


class CorruptionError(ShmIpcError):
    """Shared state is inconsistent (a buggy or hostile peer); nothing was consumed."""


class ShutDown(getattr(_queue, "ShutDown", ShmIpcError)):
    """The queue has been shut down (LAYOUT.md §6.9; Python 3.13's queue.ShutDown, of which it is a subclass where
    that exists): put raises it; get raises it once nothing is left (at once after an immediate shutdown)."""


class PeerClosedError(EOFError):
    """The other end of a pipe closed or its process died; everything it sent has been received."""


# ------------------------------------------------------------------------------------------- atomics

_SEQ_CST, _ACQUIRE, _RELEASE = 5, 2, 3
_LAYOUT_VERSION = 2  # LAYOUT.md §3: 2 since the queue's Shutdown word (§6.9); any other version is refused,
_LAYOUT_VERSION_FEATURES = 3  # but 3 for a queue with Features (§6.10, §6.11), whose bits the queue's open checks
_X86_64 = platform.machine().lower() in ("x86_64", "amd64")


class _Atomics:
    """cas64(addr, expected, desired) -> previous; fadd32(addr, v) -> previous; xchg32(addr, v) -> previous;
    cas32(addr, expected, desired) -> previous; load64/store64(addr[, v]) acquire/release. All seq_cst RMWs."""

    def __init__(self):
        self.source = None
        forced = os.environ.get("SHMIPC_PY_ATOMICS", "")
        if forced != "thunk":
            name = ctypes.util.find_library("atomic") or "libatomic.so.1"
            try:
                self._init_libatomic(ctypes.CDLL(name))
                self.source = "libatomic"
            except (OSError, AttributeError):
                pass
        if self.source is None and _X86_64:
            self._init_thunks()
            self.source = "x86-64 thunks"
        if self.source is None:
            raise ImportError("shmipc needs libatomic (GCC's runtime, package libatomic1) on this architecture")

    def _init_libatomic(self, lib):
        u64, u32, p = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
        cas8 = getattr(lib, "__atomic_compare_exchange_8")  # getattr: a literal __name would be mangled in a class
        cas8.argtypes, cas8.restype = [p, p, u64, ctypes.c_int, ctypes.c_int], ctypes.c_bool
        cas4 = getattr(lib, "__atomic_compare_exchange_4")
        cas4.argtypes, cas4.restype = [p, p, u32, ctypes.c_int, ctypes.c_int], ctypes.c_bool
        fadd4 = getattr(lib, "__atomic_fetch_add_4")
        fadd4.argtypes, fadd4.restype = [p, u32, ctypes.c_int], u32
        xchg4 = getattr(lib, "__atomic_exchange_4")
        xchg4.argtypes, xchg4.restype = [p, u32, ctypes.c_int], u32
        load8 = getattr(lib, "__atomic_load_8")
        load8.argtypes, load8.restype = [p, ctypes.c_int], u64
        store8 = getattr(lib, "__atomic_store_8")
        store8.argtypes, store8.restype = [p, u64, ctypes.c_int], None
        exp64, exp32 = ctypes.c_uint64(), ctypes.c_uint32()
        exp64_addr, exp32_addr = ctypes.addressof(exp64), ctypes.addressof(exp32)

        def cas64(addr, expected, desired):
            exp64.value = expected
            cas8(addr, exp64_addr, desired & 0xFFFFFFFFFFFFFFFF, _SEQ_CST, _SEQ_CST)
            return exp64.value

        def cas32(addr, expected, desired):
            exp32.value = expected
            cas4(addr, exp32_addr, desired & 0xFFFFFFFF, _SEQ_CST, _SEQ_CST)
            return exp32.value

        self.cas64, self.cas32 = cas64, cas32
        self.fadd32 = lambda addr, v: fadd4(addr, v & 0xFFFFFFFF, _SEQ_CST)
        self.xchg32 = lambda addr, v: xchg4(addr, v & 0xFFFFFFFF, _SEQ_CST)
        self.load64 = lambda addr: load8(addr, _ACQUIRE)
        self.store64 = lambda addr, v: store8(addr, v & 0xFFFFFFFFFFFFFFFF, _RELEASE)

    def _init_thunks(self):
        # System V x86-64: rdi = address, rsi = first value, rdx = second; result in rax/eax.
        code = {
            "cas64": bytes.fromhex("4889f0f0480fb117c3"),  # mov rax,rsi; lock cmpxchg [rdi],rdx; ret
            "cas32": bytes.fromhex("89f0f00fb117c3"),  # mov eax,esi; lock cmpxchg [rdi],edx; ret
            "fadd32": bytes.fromhex("89f0f00fc107c3"),  # mov eax,esi; lock xadd [rdi],eax; ret
            "xchg32": bytes.fromhex("89f08707c3"),  # mov eax,esi; xchg [rdi],eax (implicitly locked); ret
        }
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        offsets, at = {}, 0
        for key, blob in code.items():
            page[at:at + len(blob)] = blob
            offsets[key] = at
            at += 16
        base = ctypes.addressof(ctypes.c_char.from_buffer(page))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        if libc.mprotect(base, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            raise ImportError(f"shmipc: no libatomic and cannot make a code page executable (errno {ctypes.get_errno()})")
        self._page = page  # keep the page mapped for the life of the process
        u64, u32, p = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
        make = lambda key, res, *args: ctypes.CFUNCTYPE(res, p, *args)(base + offsets[key])
        cas8 = make("cas64", u64, u64, u64)
        cas4 = make("cas32", u32, u32, u32)
        fadd4 = make("fadd32", u32, u32)
        xchg4 = make("xchg32", u32, u32)
        m64, m32 = 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF
        self.cas64 = lambda addr, e, d: cas8(addr, e & m64, d & m64)
        self.cas32 = lambda addr, e, d: cas4(addr, e & m32, d & m32)
        self.fadd32 = lambda addr, v: fadd4(addr, v & m32)
        self.xchg32 = lambda addr, v: xchg4(addr, v & m32)
        self.load64 = self.store64 = None  # x86-64 only: plain struct access is used


_atomics = _Atomics()

# Native-format structs: one aligned memcpy, i.e. one load or store instruction (little-endian checked below).
_I64, _U64, _I32, _U32 = struct.Struct("q"), struct.Struct("Q"), struct.Struct("i"), struct.Struct("I")
if struct.pack("=I", 1) != b"\x01\x00\x00\x00":
    raise ImportError("the ShmIpc layout is little-endian")

# ------------------------------------------------------------------------------------------- libc

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.sem_open.restype = ctypes.c_void_p
_libc.sem_post.argtypes = [ctypes.c_void_p]
_libc.sem_close.argtypes = [ctypes.c_void_p]
_libc.sem_unlink.argtypes = [ctypes.c_char_p]

# membarrier(2) (§4 asymmetric form): the syscall number per architecture; MEMBARRIER_CMD_GLOBAL_EXPEDITED = 2.
_SYS_MEMBARRIER = {"x86_64": 324, "amd64": 324, "aarch64": 283, "arm64": 283}.get(platform.machine().lower())


def _sleeper_membarrier():
    """The waiter's half of the asymmetric fence; True when the kernel did it."""
    return _SYS_MEMBARRIER is not None and _libc.syscall(_SYS_MEMBARRIER, 2, 0, 0) == 0
try:
    _libc.sem_clockwait.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_Timespec)]
    _HAS_CLOCKWAIT = True
except AttributeError:  # glibc < 2.30: sem_timedwait on CLOCK_REALTIME (a clock jump stretches or cuts one slice)
    _libc.sem_timedwait.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Timespec)]
    _HAS_CLOCKWAIT = False
_CLOCK_MONOTONIC = 1
_O_CREAT, _O_EXCL = os.O_CREAT, os.O_EXCL
_EINTR, _ETIMEDOUT = 4, 110


def _sem_open(name, create=False):
    raw = f"/{name}".encode()
    if create:
        _libc.sem_unlink(raw)  # a leftover would carry a stale count
        handle = _libc.sem_open(raw, _O_CREAT | _O_EXCL, ctypes.c_uint(0o600), ctypes.c_uint(0))
    else:
        handle = _libc.sem_open(raw, 0)
    if not handle:
        err = ctypes.get_errno()
        if err == 2:
            raise FileNotFoundError(err, f"no semaphore {raw.decode()}")
        raise OSError(err, f"sem_open {raw.decode()}: {os.strerror(err)}")
    return handle


def _sem_sleep(handle, seconds):
    """Waits on the semaphore at most `seconds` (CLOCK_MONOTONIC); True when posted."""
    clock = time.CLOCK_MONOTONIC if _HAS_CLOCKWAIT else time.CLOCK_REALTIME
    end = time.clock_gettime_ns(clock) + int(seconds * 1e9)
    ts = _Timespec(end // 1_000_000_000, end % 1_000_000_000)
    while True:
        rc = (_libc.sem_clockwait(handle, _CLOCK_MONOTONIC, ctypes.byref(ts)) if _HAS_CLOCKWAIT
              else _libc.sem_timedwait(handle, ctypes.byref(ts)))
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err != _EINTR:
            return False


# ------------------------------------------------------------------------------------------- §2 identity

# _start_time's answer when /proc/PID/stat exists but cannot be read (descriptor exhaustion, hidepid, another pid
# namespace): the process counts as alive; a peer is never declared dead on a guess (LAYOUT.md §6.6).
_UNKNOWN_START = -1


def _start_time(pid):
    """Field 22 of /proc/PID/stat; None when the process is missing ("no such process"), a zombie or dead;
    _UNKNOWN_START when the file cannot be read for another reason."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError):  # ESRCH: it exited while we read
        return None
    except OSError:
        return _UNKNOWN_START
    close = text.rfind(b")")
    fields = text[close + 2:].split()
    if close < 0 or len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Delivery:
    """A message taken from an acknowledged queue (LAYOUT.md §6.10): ack() when done, nack() to give it back."""

    def __init__(self, queue, position, length, data, delivery_count):
        self._queue, self._position, self.data, self.delivery_count = queue, position, bytes(data), delivery_count

    def _held(self):
        q = self._queue
        rec = q._data + (self._position & q._offmask)
        return q._seg.load64(rec + 8) == _state_word(self._position, _S_COMMITTED) and q._seg.load64(rec + 16) & _M64 == _MY_IDENTITY

    def ack(self):
        q = self._queue
        if not self._held():
            raise ValueError("this delivery was already acked or nacked")
        q._seg.store64(q._data + (self._position & q._offmask) + 8, _state_word(self._position, _S_CONSUMED))
        q._space_sig.notify()

    def nack(self):
        """Gives the message back: delivered again, with delivery_count one higher."""
        if not self._held() or not self._queue._release(self._position, _MY_IDENTITY):
            raise ValueError("this delivery was already acked or nacked")


def _identity_word(pid, start):
    return ((start & 0xFFFFFFFF) << 32) | ((pid & 0xFFFFFFFF) << 5) | 1


def _is_identity_word(w):
    return (w & 0x1F) == 1 and ((w & 0xFFFFFFFF) >> 5) != 0


def _is_alive(pid, start=0, bits=32):
    if pid <= 0:
        return False
    actual = _start_time(pid)
    if actual is None:
        return False
    if actual == _UNKNOWN_START:
        return True
    mask = 0 if bits == 0 else 0xFFFFFFFF if bits == 32 else (1 << 64) - 1
    return (actual & mask) == (start & mask)


def _identity_alive(word):
    return _is_alive((word & 0xFFFFFFFF) >> 5, word >> 32, 32)


_MY_PID = os.getpid()
_MY_START = _start_time(_MY_PID)
if _MY_START is None or _MY_START == _UNKNOWN_START:
    raise ImportError("shmipc: cannot read this process's start time from /proc/self/stat")
_MY_IDENTITY = _identity_word(_MY_PID, _MY_START)

# ------------------------------------------------------------------------------------------- §1, §3 segments

_HDR = 128
_MAGIC = 0x00004350494D4853
_KIND_QUEUE, _KIND_PIPE = 1, 2
_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def _check_name(name):
    if not (1 <= len(name) <= 200) or name[0] == "." or not set(name) <= _NAME_CHARS:
        raise ValueError(f"invalid ShmIpc name {name!r}: 1-200 of [A-Za-z0-9._-], not starting with '.'")


_KIND_NAMES = {1: "Queue", 2: "Pipe", 3: "SharedMemory", 4: "Array", 5: "Value", 6: "Counter", 7: "Lock", 8: "Event", 9: "Semaphore",
               10: "Condition", 11: "Barrier", 0x7F: "Raw"}


def _kind_name(kind):
    return _KIND_NAMES.get(kind, f"unknown ({kind})")


def _fnv1a64(header):
    h = 0xCBF29CE484222325
    for b in header[8:120]:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class _Segment:
    """A mapped segment with its LOCK_SH, its semaphores, and ordered accessors by file offset."""

    def __init__(self, name, kind, create=None):
        _check_name(name)
        self.name, self.path = name, f"/dev/shm/shmipc.{name}"
        self.creator = create is not None
        self.sems = []
        self.fd = -1
        self.mm = None
        if create is None:
            self._open(kind)
        else:
            self._create(kind, *create)
        self._anchor = ctypes.c_char.from_buffer(self.mm)
        self.base = ctypes.addressof(self._anchor)
        self._bind_accessors()

    def _open(self, kind):
        deadline = time.monotonic() + 5.0  # a creator may be mid-way
        while True:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)  # FileNotFoundError when absent
            try:
                fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                os.close(self.fd)
                raise ShmIpcError(f"segment '{self.name}' is being removed by another process")
            length = os.fstat(self.fd).st_size
            if length >= _HDR:
                self.mm = mmap.mmap(self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                problem = self._validate(length, kind)
                if problem is None:
                    break
                self.mm.close()
                self.mm = None
            else:
                problem = ("Truncated", f"the file is {length} bytes")
            os.close(self.fd)
            retry = problem[0] == "NotInitialized" or (problem[0] == "Truncated" and length < _HDR)
            if not retry or time.monotonic() >= deadline:
                raise InvalidSegmentError(self.name, *problem)
            time.sleep(0.001)
        count = _U32.unpack_from(self.mm, 68)[0]
        try:
            for i in range(count):
                self.sems.append(_sem_open(f"shmipc.{self.name}.s{i}"))
        except BaseException:
            self.close(unlink=False)
            raise

    def _validate(self, length, kind):
        mm = self.mm
        magic = _U64.unpack_from(mm, 0)[0]  # acquire (x86-64 load); the creator stores it last with release
        if magic == 0:
            return ("NotInitialized", "magic is zero")
        if magic != _MAGIC:
            return ("ForeignFormat", f"magic 0x{magic:016X}")
        version, got_kind, total, hsize = struct.unpack_from("<IIQI", mm, 8)
        if version != _LAYOUT_VERSION and not (version == _LAYOUT_VERSION_FEATURES and got_kind == _KIND_QUEUE):
            return ("UnsupportedVersion", f"layout version {version}")
        header = mm[0:_HDR]
        if _fnv1a64(header) != struct.unpack_from("<Q", header, 120)[0]:
            return ("Corrupted", "header checksum mismatch")
        if got_kind != kind:
            return ("WrongKind", f"it is a {_kind_name(got_kind)} segment, expected {_kind_name(kind)}")
        coff, csize, doff, dsize = struct.unpack_from("<QQQQ", header, 32)
        pid, nsems = struct.unpack_from("<iI", header, 64)
        if hsize != _HDR:
            return ("Corrupted", f"header size {hsize}")
        if total != length:
            return ("Truncated" if total > length else "Corrupted", f"header says {total} bytes, file has {length}")
        if coff != _HDR or csize % 128 or csize > total or doff != coff + csize or dsize > total or doff + dsize != total:
            return ("Corrupted", "regions do not tile the file")
        if pid <= 0 or nsems > 8:
            return ("Corrupted", f"creator pid {pid}, {nsems} semaphores")
        return None

    def _create(self, kind, control_size, data_size, nsems):
        total = _HDR + control_size + data_size
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)  # FileExistsError
        try:
            os.fchmod(self.fd, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            os.ftruncate(self.fd, total)
            self.mm = mmap.mmap(self.fd, total, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            header = bytearray(_HDR)  # Magic stays 0 until publish()
            struct.pack_into("<IIQIIQQQQiIQ", header, 8, _LAYOUT_VERSION, kind, total, _HDR, 0, _HDR, control_size,
                             _HDR + control_size, data_size, _MY_PID, nsems, _MY_START)
            struct.pack_into("<Q", header, 120, _fnv1a64(header))
            self.mm[8:_HDR] = bytes(header[8:])
            for i in range(nsems):
                self.sems.append(_sem_open(f"shmipc.{self.name}.s{i}", create=True))
        except BaseException:
            self.close(unlink=True)
            raise

    def publish(self):
        self.store64(0, _MAGIC)  # release: everything initialised before it

    def _bind_accessors(self):
        mm, base, a = self.mm, self.base, _atomics
        # Item access of a native-format memoryview is one memcpy of the aligned word: one load or store
        # instruction. NOT struct.pack_into: CPython zero-fills the target before packing (s_pack_internal's
        # memset), so a peer reading the word at that moment sees 0.
        w64 = self._w64 = memoryview(mm).cast("q")
        self._w32 = memoryview(mm).cast("i")
        if _X86_64:
            self.load64 = lambda off: w64[off >> 3]

            def store64(off, v):
                w64[off >> 3] = v - (1 << 64) if v >= (1 << 63) else v
        else:
            self.load64 = lambda off: _to_signed64(a.load64(base + off))

            def store64(off, v):
                a.store64(base + off, v)
        self.store64 = store64
        w32 = self._w32
        self.load32 = lambda off: w32[off >> 2]  # sleeper counts: read only to skip a syscall
        self.cas64 = lambda off, e, d: _to_signed64(a.cas64(base + off, e, d))
        self.cas32 = lambda off, e, d: _to_signed32(a.cas32(base + off, e, d))
        self.fadd32 = lambda off, v: _to_signed32(a.fadd32(base + off, v))
        self.xchg32 = lambda off, v: _to_signed32(a.xchg32(base + off, v))

    def close(self, unlink):
        for s in self.sems:
            _libc.sem_close(s)
        if unlink:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            for i in range(len(self.sems)):
                _libc.sem_unlink(f"/shmipc.{self.name}.s{i}".encode())
        self.sems = []
        if self.mm is not None:
            self._anchor = None
            for view in ("_w64", "_w32"):
                if getattr(self, view, None) is not None:
                    getattr(self, view).release()
                    setattr(self, view, None)
            self.mm.close()
            self.mm = None
        if self.fd >= 0:
            os.close(self.fd)  # drops the LOCK_SH
            self.fd = -1


def _to_signed64(v):
    return v - (1 << 64) if v >= (1 << 63) else v


def _to_signed32(v):
    return v - (1 << 32) if v >= (1 << 31) else v


# ------------------------------------------------------------------------------------------- §4 waiting

class _Signal:
    """A sleeper count (int32 at a file offset) and a named semaphore."""

    def __init__(self, seg, offset, sem, membarrier=False):
        # membarrier: the segment is marked for the asymmetric fence (§4): publishers may skip theirs, so a
        # registration is followed by membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) before the re-check.
        self.seg, self.offset, self.sem, self.membarrier = seg, offset, sem, membarrier

    def notify(self):
        # seq_cst fetch-add of 0: the full fence after our publishing store, and the read of the count.
        if self.seg.fadd32(self.offset, 0) != 0:
            n = self.seg.xchg32(self.offset, 0)
            for _ in range(min(max(n, 0), 64)):
                _libc.sem_post(self.sem)

    def _settle(self):
        """§4 "Settling": every registration ends exactly once, by a consumed post or by this. Take it back
        (decrement while positive; it may be another waiter's: the counts still match and that waiter gets the
        post meant for us); if the count is 0, a notifier has exchanged our registration and is posting for it:
        consume that post, waiting at most 10 ms (a notifier killed between its exchange and its post leaves
        nothing). A post left behind would make every later sleep on this semaphore return at once."""
        cur = self.seg.load32(self.offset)
        while cur > 0:
            seen = self.seg.cas32(self.offset, cur, cur - 1)
            if seen == cur:
                return
            cur = seen
        _sem_sleep(self.sem, 0.010)

    def wait(self, ready, before_sleep, deadline, spin=50e-6, slice_=0.1):
        """Waits until ready() (True) or the deadline (time.monotonic() value, None = forever) passes (False).
        Nothing here is cancelled by a post; an exception (KeyboardInterrupt) while registered settles first."""
        if ready():
            return True
        now = time.monotonic()
        spin_end, yield_from = now + spin, now + 2e-6
        if deadline is not None:
            spin_end = min(spin_end, deadline)
        polls = 0
        while now < spin_end:
            if ready():
                return True
            polls += 1
            if now >= yield_from and polls % 4 == 0:
                os.sched_yield()  # after ~2 us, let a peer that shares our core run
            now = time.monotonic()
        while True:
            before_sleep()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return ready()
            piece = slice_ if deadline is None else min(slice_, deadline - now)
            self.seg.fadd32(self.offset, 1)  # register: a full fence before the re-check
            if self.membarrier and not _sleeper_membarrier():
                piece = min(piece, 0.001)  # §4: a waiter that cannot issue the membarrier sleeps at most 1 ms
            settled = False
            try:
                if ready():
                    settled = True
                    self._settle()
                    return True
                settled = _sem_sleep(self.sem, piece)  # True: a consumed post settled the registration
                if not settled:
                    settled = True
                    self._settle()
            finally:
                if not settled:  # an exception (e.g. KeyboardInterrupt in the sleep's EINTR loop)
                    self._settle()
            if ready():
                return True


def _deadline(timeout):
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return time.monotonic() + timeout



# ------------------------------------------------------------------------------------------- §8 side segments

_KIND_SIDE = 12
_SD_CONTROL, _SD_STATE, _SD_LENGTH, _SD_RETAINED, _SD_HOSTLEN, _SD_HOSTNAME = 256, 0, 8, 16, 20, 24
_SD_WRITING, _SD_PUBLISHED, _SD_FREE = 0, 4, 6
_SR_MAGIC, _SR_NAME, _SR_MAX_NAME = 0x45444953, 16, 207  # "SIDE"; record: magic, name length, length, name
_SR_MAX = _SR_NAME + _SR_MAX_NAME
_SIDE_GRANULARITY = 1 << 20  # made in 1 MiB steps, so messages of similar sizes reuse one segment
_SIDE_MAX_LENGTH = (1 << 31) - 1  # the longest a .NET peer reads
_SIDE_PREFIX = "side-"
_side_sequence = [0]
_side_sequence_lock = threading.Lock()


def _side_unused(state):
    """0 writing, 6 free, or the identity of a consumer proved dead: nobody reads it, its sender may take it back."""
    return state in (_SD_WRITING, _SD_FREE) or (_is_identity_word(state) and not _identity_alive(state))


def _side_announced(record):
    """The message length a reference record announces, or None when it is malformed."""
    if len(record) < _SR_NAME:
        return None
    magic, name_len, length = struct.unpack_from("<IiQ", record, 0)
    if magic != _SR_MAGIC or not 1 <= name_len <= _SR_MAX_NAME or _SR_NAME + name_len > len(record) or length > _SIDE_MAX_LENGTH:
        return None
    return length


class _SideSegments:
    """LAYOUT.md §8: the side segments of one queue or pipe handle: the last one it sent (reused once its reader freed
    it) and the mapping of the last one it read. State (control +0) says who owns a segment:
        0 writing -> 4 published (sender, release: payload and Length first) -> a consumer's identity (CAS by the
        consumer that took the ring record) -> 6 free (exchange by that consumer) -> 0 (CAS by the sender, to reuse);
        4 -> 6 when the sender could not write the ring record.
    The name goes when neither needs it: the sender sets Retained 1 -> 0 and then loads State, the consumer sets
    State -> 6 and then loads Retained, each by a seq_cst RMW (a full fence): at least one of them unlinks."""

    def __init__(self, host):
        self._host = host
        self._sent = None
        self._read = None

    def _create(self, capacity):
        for _ in range(8):  # O_EXCL: a name someone else holds is skipped
            with _side_sequence_lock:
                _side_sequence[0] += 1
                seq = _side_sequence[0]
            name = f"{_SIDE_PREFIX}{_MY_PID}-{_MY_START & 0xFFFFFFFF:08x}-{seq}"
            try:
                seg = _Segment(name, _KIND_SIDE, create=(_SD_CONTROL, capacity, 0))
                break
            except FileExistsError:
                continue
        else:
            raise ShmIpcError(f"no free side-segment name for '{self._host.name}'")
        try:
            if struct.unpack_from("<I", self._host.mm, 28)[0] & 1:  # §3 Flags bit 0: the host gives its group access
                struct.pack_into("<I", seg.mm, 28, 1)
                struct.pack_into("<Q", seg.mm, 120, _fnv1a64(seg.mm[0:_HDR]))
                os.fchmod(seg.fd, 0o660)
            os.posix_fallocate(seg.fd, 0, _HDR + _SD_CONTROL + capacity)  # a full /dev/shm fails here, not as a SIGBUS
            host = f"shmipc.{self._host.name}".encode("ascii")[:_SD_CONTROL - _SD_HOSTNAME]
            c = _HDR
            struct.pack_into("<ii", seg.mm, c + _SD_RETAINED, 1, len(host))
            seg.mm[c + _SD_HOSTNAME:c + _SD_HOSTNAME + len(host)] = host
            seg.publish()
        except OSError as e:
            seg.close(unlink=True)
            raise OSError(e.errno, f"side segment of {capacity} bytes for '{self._host.name}': {e.strerror or e}") from e
        except BaseException:
            seg.close(unlink=True)
            raise
        return seg

    @staticmethod
    def _let_go(seg):
        if seg is None:
            return
        seg.xchg32(_HDR + _SD_RETAINED, 0)
        if _side_unused(seg.load64(_HDR + _SD_STATE) & _M64):
            try:
                os.unlink(seg.path)
            except FileNotFoundError:
                pass
        seg.close(unlink=False)

    def publish(self, data):
        """A segment holding data, published (State 4); the caller writes the reference record, then calls keep()."""
        seg, self._sent = self._sent, None
        if seg is not None:
            state = seg.load64(_HDR + _SD_STATE)
            if (_U64.unpack_from(seg.mm, 56)[0] < len(data) or not _side_unused(state & _M64)
                    or seg.cas64(_HDR + _SD_STATE, state, _SD_WRITING) != state):
                self._let_go(seg)
                seg = None
        if seg is None:
            seg = self._create(max(_SIDE_GRANULARITY, (len(data) + _SIDE_GRANULARITY - 1) & ~(_SIDE_GRANULARITY - 1)))
        data_off = _U64.unpack_from(seg.mm, 48)[0]
        seg.mm[data_off:data_off + len(data)] = data
        seg.store64(_HDR + _SD_LENGTH, len(data))
        seg.store64(_HDR + _SD_STATE, _SD_PUBLISHED)  # release: pairs with the consumer's CAS
        return seg

    @staticmethod
    def record(seg, length):
        name = f"shmipc.{seg.name}".encode("ascii")
        return struct.pack("<IiQ", _SR_MAGIC, len(name), length) + name

    def keep(self, seg, written):
        """Keeps seg for the next large message; unpublished first when its reference record was not written."""
        if not written:
            seg.cas64(_HDR + _SD_STATE, _SD_PUBLISHED, _SD_FREE)
        self._let_go(self._sent)
        self._sent = seg

    def read(self, record, discard=False):
        """§8.3, after the ring record was taken: the message's bytes (None with discard). Opens the named segment (or
        reuses the last mapping), CAS State 4 -> our identity, copies, State -> 6, unlinks when its sender let go.
        CorruptionError for anything a well-behaved sender cannot have written, a lying length above all."""
        host = self._host.name
        announced = _side_announced(record)
        if announced is None:
            raise CorruptionError(f"'{host}': a malformed side-segment record of {len(record)} bytes")
        os_name = bytes(record[_SR_NAME:_SR_NAME + struct.unpack_from("<i", record, 4)[0]]).decode("ascii", "replace")
        name = os_name[len("shmipc."):]
        if not os_name.startswith("shmipc." + _SIDE_PREFIX) or not set(name) <= _NAME_CHARS or len(name) > 200:
            raise CorruptionError(f"'{host}': a side-segment record names '{os_name}', not a side segment")
        seg, self._read = self._read, None
        if seg is not None and seg.name != name:
            seg.close(unlink=False)
            seg = None
        if seg is None:
            try:
                seg = _Segment(name, _KIND_SIDE)
            except (FileNotFoundError, InvalidSegmentError) as e:
                raise CorruptionError(f"'{host}': side segment '{os_name}' of a message: {e}; that message is lost") from e
            if _U64.unpack_from(seg.mm, 40)[0] < _SD_CONTROL:
                seg.close(unlink=False)
                raise CorruptionError(f"'{host}': side segment '{os_name}' has too small a control block")
        self._read = seg
        found = seg.cas64(_HDR + _SD_STATE, _SD_PUBLISHED, _to_signed64(_MY_IDENTITY))
        if found != _SD_PUBLISHED:
            raise CorruptionError(f"'{host}': side segment '{os_name}' holds no published message (state 0x{found & _M64:x})")
        try:
            stored = seg.load64(_HDR + _SD_LENGTH)
            capacity = _U64.unpack_from(seg.mm, 56)[0]
            if stored != announced or stored > capacity:
                raise CorruptionError(f"'{host}': side segment '{os_name}' holds {stored} bytes in {capacity}, "
                                      f"its record announced {announced}")
            if discard:
                return None
            data_off = _U64.unpack_from(seg.mm, 48)[0]
            return seg.mm[data_off:data_off + stored]
        finally:
            while True:  # exchange State -> 6 (a CAS loop: seq_cst, a full fence), then look at Retained
                state = seg.load64(_HDR + _SD_STATE)
                if seg.cas64(_HDR + _SD_STATE, state, _SD_FREE) == state:
                    break
            if seg.load32(_HDR + _SD_RETAINED) == 0:  # the sender let go: nobody needs the name
                try:
                    os.unlink(seg.path)
                except FileNotFoundError:
                    pass

    def close(self):
        self._let_go(self._sent)
        self._sent = None
        if self._read is not None:
            self._read.close(unlink=False)
            self._read = None


# ------------------------------------------------------------------------------------------- §6 Queue

_Q_CONTROL, _Q_TAIL, _Q_READ, _Q_HEAD, _Q_LOCK, _Q_DSLEEP, _Q_SSLEEP = 768, 128, 256, 384, 392, 512, 640
_Q_SHUTDOWN = 16  # §6.9: 0 open, 1 shut down (drain), 2 shut down immediately; CAS upward only
_Q_FEATURES = 20  # §6.10: bit 0 acknowledged; a peer refuses bits it does not know
_Q_MAX_DELIVERIES = 24  # §6.10: 0 unlimited
_Q_REDELIVERIES = 264  # §6.10: atomic add by a releaser
_Q_ACKNOWLEDGED = 1
_K_MESSAGE, _K_PADDING, _K_SIDE = 1, 2, 3  # kind 3: the payload names a side segment (§8)
_Q_ASYMMETRIC_FENCE = 4  # Features bit 2 (§4): waiters issue membarrier(GLOBAL_EXPEDITED) after registering
_Q_SEMAPHORES, _ALIGN = 2, 32
_MAX_ENCODABLE = (1 << 27) - 1
_MAX_MESSAGE_LIMIT = _MAX_ENCODABLE - 63  # the longest record, and so any padding before it, fits 27 bits
_S_WRITING, _S_COMMITTED, _S_CONSUMED, _S_ABANDONED = 0, 1, 2, 3
_M64 = (1 << 64) - 1


def _qsize(length):
    return (32 + length + 31) & ~31


def _stamp(p):
    """The free stamp ~p as a signed 64-bit value (what load64 returns)."""
    return ~p


def _state_word(p, state):
    return _to_signed64((((p >> 5) & 0xFFFFFFFF) << 32) | state)


class Queue:
    """A ShmIpc Queue (many producers, many consumers) seen from Python, like multiprocessing.Queue for bytes.
    put/get raise queue.Full/queue.Empty when their timeout runs out; get(timeout=None) waits forever."""

    def __init__(self, seg):
        self._seg = seg
        c = _HDR
        self._c = c
        self._data = _HDR + _U64.unpack_from(seg.mm, 40)[0]
        self.capacity = _I64.unpack_from(seg.mm, c)[0]
        self._mask = self.capacity - 1
        self._offmask = self._mask & ~(_ALIGN - 1)  # even a garbage position gives an aligned offset in the ring
        self.max_message_length = _I32.unpack_from(seg.mm, c + 8)[0]
        marked = bool(seg.load32(c + _Q_FEATURES) & _Q_ASYMMETRIC_FENCE)  # §4 asymmetric form
        self._data_sig = _Signal(seg, c + _Q_DSLEEP, seg.sems[0], marked)
        self._space_sig = _Signal(seg, c + _Q_SSLEEP, seg.sems[1], marked)
        self._cached_head = seg.load64(c + _Q_HEAD)
        self.spin, self.slice = 50e-6, 0.1
        self.acknowledged = bool(seg.load32(c + _Q_FEATURES) & _Q_ACKNOWLEDGED)
        self._redeliveries_seen = 0
        self._sides = _SideSegments(seg)

    @classmethod
    def open(cls, name):
        """Opens an existing queue. FileNotFoundError when absent; InvalidSegmentError when not a valid queue."""
        seg = _Segment(name, _KIND_QUEUE)
        try:
            mm, c = seg.mm, _HDR
            cap, maxlen, align = struct.unpack_from("<qiI", mm, c)
            csize, dsize = struct.unpack_from("<QQ", mm, 40)[0], struct.unpack_from("<Q", mm, 56)[0]
            head, read, tail = seg.load64(c + _Q_HEAD), seg.load64(c + _Q_READ), seg.load64(c + _Q_TAIL)
            if (len(seg.sems) != _Q_SEMAPHORES or csize < _Q_CONTROL or cap < 4096 or cap > 1 << 30 or cap & (cap - 1)
                    or cap != dsize or maxlen < 0 or maxlen > _MAX_MESSAGE_LIMIT or _qsize(maxlen) > cap // 2 or align != _ALIGN
                    or head < 0 or head > read or read > tail or (head | read | tail) & 31
                    or not 0 <= seg.load32(c + _Q_SHUTDOWN) <= 2):
                raise InvalidSegmentError(name, "Corrupted", "queue control block out of range")
            if seg.load32(c + _Q_FEATURES) & ~(_Q_ACKNOWLEDGED | _Q_ASYMMETRIC_FENCE):
                raise InvalidSegmentError(name, "Corrupted", "queue feature bits this peer does not know (LAYOUT.md §6.10)")
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    @classmethod
    def create(cls, name, capacity=1 << 20, max_message_length=None):
        """Creates a queue; the creator unlinks it on close(). FileExistsError when the name is taken."""
        if capacity < 4096 or capacity > 1 << 30 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two from 4 KiB to 1 GiB")
        largest = capacity // 2 - 32
        maxlen = min(65536, largest) if max_message_length is None else max_message_length
        if not 0 <= maxlen <= min(largest, _MAX_MESSAGE_LIMIT):
            raise ValueError(f"max_message_length must be from 0 to {min(largest, _MAX_MESSAGE_LIMIT)}")
        seg = _Segment(name, _KIND_QUEUE, create=(_Q_CONTROL, capacity, _Q_SEMAPHORES))
        struct.pack_into("<qiI", seg.mm, _HDR, capacity, maxlen, 32)
        q = cls(seg)
        q._stamp_free(-capacity, capacity)  # lap 0: the unit at offset o gets the stamps of position o
        seg.publish()
        return q

    def _stamp_free(self, position, size):
        """§6.5: Claim, Reader, ProducerIdentity, then State last (release): a consumer that loads State and then
        Claim sees the Claim that goes with that State or a newer one. Published as a whole by Head (or Magic).
        Last unit first (§6.6): the first unit's Claim, the record's size, is overwritten last, so a reclaimer
        killed half-way never leaves payload bytes behind a free-stamped first unit."""
        store, data, mask, cap = self._seg.store64, self._data, self._offmask, self.capacity
        for x in range(position + size - _ALIGN, position - 1, -_ALIGN):
            nxt = x + cap
            u = data + (x & mask)
            store(u, ~nxt)
            store(u + 16, ~nxt)
            store(u + 24, 0)
            store(u + 8, _state_word(nxt, _S_WRITING))

    def _decode(self, w, to_end):
        """(kind, length, size) of a valid claim word at an offset with to_end bytes to the wrap, else None."""
        kind, length = w & 31, (w >> 5) & _MAX_ENCODABLE
        if kind == _K_MESSAGE or kind == _K_SIDE:
            size = _qsize(length)
            limit = self.max_message_length if kind == _K_MESSAGE else _SR_MAX
            return (kind, length, size) if length <= limit and size <= to_end else None
        return (kind, length, length) if kind == _K_PADDING and length == to_end and length > 0 else None

    def _claim_word(self, kind, length):
        return _to_signed64(kind | (length << 5) | ((_MY_PID & 0xFFFFFFFF) << 32))

    # ---- §6.5
    def _reclaim(self, blocked=None):
        """Bytes freed (s1 is then notified here). Walks only up to min(ReadPosition, Tail): a consumer may skip a
        padding record a moment before Tail is advanced past it. Head and the lock are released by CAS, so a holder
        wrongly taken for dead can neither move Head backwards nor release somebody else's lock."""
        seg, c = self._seg, self._c
        if seg.load64(c + _Q_READ) - seg.load64(c + _Q_HEAD) <= 0:
            return 0
        if seg.cas64(c + _Q_LOCK, 0, _MY_IDENTITY) != 0:
            return 0
        start = h = seg.load64(c + _Q_HEAD)
        corrupt = None
        try:
            if h & (_ALIGN - 1):
                corrupt = f"head {h} is not a multiple of 32"
                return 0
            r = min(seg.load64(c + _Q_READ), seg.load64(c + _Q_TAIL))
            while h < r:
                off = h & self._offmask
                rec = self._data + off
                claim = seg.load64(rec) & _M64
                if claim == (~(h + self.capacity)) & _M64:
                    # already free for the next lap: a reclaimer died here (§6.6); finish the unit, step over it
                    self._stamp_free(h, _ALIGN)
                    h += _ALIGN
                    continue
                d = self._decode(claim, self.capacity - off)
                if d is None:
                    corrupt = f"invalid claim behind the read position at {h}"
                    break
                if d[0] != _K_PADDING:
                    st = seg.load64(rec + 8) & _M64
                    if st >> 32 != (h >> 5) & 0xFFFFFFFF or st & 0xFFFFFFFF == _S_WRITING:
                        corrupt = f"bad state behind the read position at {h}"
                        break
                    if st & 0xFFFFFFFF == _S_COMMITTED:
                        if blocked is not None:
                            blocked.extend((h, seg.load64(rec + 16) & _M64))
                        break
                if h + d[2] > r:
                    corrupt = f"a record of {d[2]} bytes at {h} reaches past the read position {r}"
                    break
                self._stamp_free(h, d[2])
                h += d[2]
        finally:
            if h != start:
                seg.cas64(c + _Q_HEAD, start, h)  # after the stamps
            seg.cas64(c + _Q_LOCK, _MY_IDENTITY, 0)
            if h != start:
                self._space_sig.notify()
            if corrupt:
                raise CorruptionError(f"queue '{seg.name}': {corrupt}")
        return h - start

    # ---- §6.3
    def _claim(self, length, kind=_K_MESSAGE):
        seg, c, cap = self._seg, self._c, self.capacity
        need = _qsize(length)
        reclaimed = False
        while True:
            t = seg.load64(c + _Q_TAIL)
            if t & (_ALIGN - 1):
                raise CorruptionError(f"queue '{seg.name}': tail {t} is not a multiple of 32")
            off = t & self._offmask
            to_end = cap - off
            wrap = need > to_end
            size = to_end if wrap else need
            h = self._cached_head
            if t + size > h + cap or t < h:
                h = self._cached_head = seg.load64(c + _Q_HEAD)
                if t < h:  # our t is stale (Head moved past it), unless Tail itself is behind Head
                    if seg.load64(c + _Q_TAIL) < seg.load64(c + _Q_HEAD):
                        raise CorruptionError(f"queue '{seg.name}': the tail is behind the head")
                    continue
            if t + size > h + cap:
                if not reclaimed and self._reclaim() > 0:
                    reclaimed = True
                    continue
                return -1
            rec = self._data + off
            seen = seg.load64(rec)
            if seen != ~t:
                d = self._decode(seen & _M64, to_end)
                if d is not None:
                    seg.cas64(c + _Q_TAIL, t, t + d[2])
                elif seg.load64(c + _Q_TAIL) == t:
                    raise CorruptionError(f"queue '{seg.name}': word at the tail is neither free nor a claim")
                continue
            mine = self._claim_word(_K_PADDING, to_end) if wrap else self._claim_word(kind, length)
            if seg.cas64(rec, ~t, mine) != ~t:
                continue
            if not wrap:
                seg.store64(rec + 24, _MY_IDENTITY)
            seg.cas64(c + _Q_TAIL, t, t + size)
            if not wrap:
                return t

    def _has_space(self, length):
        seg, c = self._seg, self._c
        h, t = seg.load64(c + _Q_HEAD), seg.load64(c + _Q_TAIL)
        need, to_end = _qsize(length), self.capacity - (t & self._offmask)
        return t + (to_end + need if need > to_end else need) <= h + self.capacity

    def _repair_reclaim(self):
        seg, c = self._seg, self._c
        owner = seg.load64(c + _Q_LOCK) & _M64
        if owner and not _identity_alive(owner):
            seg.cas64(c + _Q_LOCK, _to_signed64(owner), 0)
        blocked = []
        self._reclaim(blocked)
        if self.acknowledged:
            if self._release_dead_takers():  # §6.10: delivered again, never dropped
                self._reclaim()
        elif blocked and _is_identity_word(blocked[1]) and not _identity_alive(blocked[1]):
            at, reader = blocked
            rec = self._data + (at & self._offmask)
            if seg.load64(rec + 16) & _M64 == reader:
                if seg.cas64(rec + 8, _state_word(at, _S_COMMITTED), _state_word(at, _S_CONSUMED)) == _state_word(at, _S_COMMITTED):
                    self._reclaim()

    # ---- §6.9
    def _shutdown_state(self, fence=False):
        """The Shutdown word. fence=True: read by a seq_cst fetch-add of 0, a full fence as well as an atomic read."""
        seg, off = self._seg, self._c + _Q_SHUTDOWN
        return seg.fadd32(off, 0) if fence else seg.load32(off)

    @property
    def is_shutdown(self):
        """True once any process has shut the queue down."""
        return self._shutdown_state(fence=True) != 0

    def shutdown(self, immediate=False):
        """Shuts the queue down for every process (Python 3.13's Queue.shutdown): put raises ShutDown; get returns
        what is left, then raises it (at once, discarding what is queued, when immediate). Wakes every sleeper."""
        seg, off, want = self._seg, self._c + _Q_SHUTDOWN, 2 if immediate else 1
        seen = self._shutdown_state(fence=True)
        while seen < want:
            found = seg.cas32(off, seen, want)
            if found == seen:
                break
            seen = found
        self._data_sig.notify()
        self._space_sig.notify()

    def _raise_shutdown(self):
        raise ShutDown(f"queue '{self._seg.name}' has been shut down")

    def put(self, data, block=True, timeout=None):
        """Appends bytes. queue.Full when no room within the timeout; ShutDown when the queue is shut down (also while
        waiting for room). A message longer than max_message_length goes into a side segment (LAYOUT.md §8), the ring
        carries a record naming it; ValueError on an acknowledged queue (which carries none) or past 2 GiB - 1."""
        data = bytes(data)
        if len(data) <= self.max_message_length:
            return self._put_record(data, _K_MESSAGE, block, timeout)
        if self.acknowledged or len(data) > _SIDE_MAX_LENGTH:
            raise ValueError(f"message of {len(data)} bytes; queue '{self._seg.name}' takes at most {self.max_message_length}"
                             + (" (acknowledged queues carry no side segments)" if self.acknowledged else f", {_SIDE_MAX_LENGTH} through side segments"))
        if self._shutdown_state():
            self._raise_shutdown()
        if not block and not self._has_space(_SR_MAX) and not (self._reclaim() > 0 and self._has_space(_SR_MAX)):
            raise _queue.Full  # a put that does not wait copies nothing for nothing
        side = self._sides.publish(data)
        written = False
        try:
            self._put_record(self._sides.record(side, len(data)), _K_SIDE, block, timeout)
            written = True
        finally:
            self._sides.keep(side, written)

    def _put_record(self, data, kind, block, timeout):
        deadline = _deadline(timeout) if block else 0
        while True:
            if self._shutdown_state():
                self._raise_shutdown()
            p = self._claim(len(data), kind)
            if p >= 0:
                rec = self._data + (p & self._offmask)
                if self._shutdown_state(fence=True):
                    # §6.9: set after our claim: abandon the record rather than commit it; consumers may wait for it.
                    self._seg.store64(rec + 8, _state_word(p, _S_ABANDONED))
                    self._data_sig.notify()
                    self._raise_shutdown()
                self._seg.mm[rec + 32:rec + 32 + len(data)] = data
                self._seg.store64(rec + 8, _state_word(p, _S_COMMITTED))  # commit (release)
                self._data_sig.notify()
                return
            if deadline == 0 or (deadline is not None and time.monotonic() >= deadline):
                raise _queue.Full
            n = len(data)
            ready = lambda: self._has_space(n) or self._shutdown_state() != 0 or (self._reclaim() > 0 and self._has_space(n))
            self._space_sig.wait(ready, self._repair_reclaim, deadline, self.spin, self.slice)

    def put_nowait(self, data):
        self.put(data, block=False)

    # ---- §6.4
    def _empty_or_stale(self, r, detail):
        """Something unexpected is at r: True when nothing was enqueued there yet (r == Tail), False when r was
        stale (retry); CorruptionError when r is current, below Tail, and its header stays invalid."""
        seg, c = self._seg, self._c
        t = seg.load64(c + _Q_TAIL)
        if seg.load64(c + _Q_READ) != r:
            return False
        if r == t:
            return True
        if r > t:
            raise CorruptionError(f"queue '{seg.name}': read position {r} past the tail {t}")
        # r < t: a record was claimed here, so its header must be valid. Re-read once (State, then Claim).
        off = r & self._offmask
        rec = self._data + off
        st = seg.load64(rec + 8) & _M64
        w = seg.load64(rec) & _M64
        if (self._decode(w, self.capacity - off) is not None and st >> 32 == (r >> 5) & 0xFFFFFFFF) or seg.load64(c + _Q_READ) != r:
            return False
        raise CorruptionError(f"queue '{seg.name}': {detail} at {r}")

    def _take(self, hold=False):
        """bytes (with hold: (position, length, bytes), the record left taken, §6.10), or None when empty / the next record is still being written. The fast path never reads Tail.
        It loads State first, then Claim: every State tagged for r was published (release) after the Claim that
        goes with it, so the Claim loaded after it is this lap's or newer (then ReadPosition has moved on and
        every CAS below fails)."""
        seg, c, mm = self._seg, self._c, self._seg.mm
        while True:
            r = seg.load64(c + _Q_READ)
            if r & (_ALIGN - 1):
                if seg.load64(c + _Q_READ) == r:
                    raise CorruptionError(f"queue '{seg.name}': read position {r} is not a multiple of 32")
                continue
            off = r & self._offmask
            rec = self._data + off
            st = seg.load64(rec + 8) & _M64  # acquire; this order: State, then Claim
            w = seg.load64(rec) & _M64
            if w == ~r & _M64:
                return None
            d = self._decode(w, self.capacity - off) if st >> 32 == (r >> 5) & 0xFFFFFFFF else None
            if d is None:  # an older lap's record not yet reclaimed (empty), or r is stale
                if self._empty_or_stale(r, f"invalid header (claim 0x{w:016X}, state 0x{st:016X})"):
                    return None
                continue
            kind, length, size = d
            if kind == _K_PADDING:
                # Its producer may not have advanced Tail yet: help it first, so ReadPosition never passes Tail.
                # A padding record keeps its stamp's "writing" state: that is not pending.
                seg.cas64(c + _Q_TAIL, r, r + size)
                seg.cas64(c + _Q_READ, r, r + size)
                continue
            s = st & 0xFFFFFFFF
            if s == _S_COMMITTED and kind == _K_SIDE:
                if seg.cas64(rec + 16, ~r, _MY_IDENTITY) != ~r:
                    seg.cas64(c + _Q_READ, r, r + size)  # another consumer has it: help
                    continue
                seg.cas64(c + _Q_READ, r, r + size)
                record = mm[rec + 32:rec + 32 + length]
                try:  # the message is ours now, whatever its side segment holds: the record is consumed either way
                    data = self._sides.read(record, discard=self.acknowledged)
                finally:
                    seg.store64(rec + 8, _state_word(r, _S_CONSUMED))
                    self._space_sig.notify()
                if self.acknowledged:  # §8.3: a writer ignored the refusal; its segment is handed back, the message dropped
                    print(f"shmipc: acknowledged queue {seg.name} held a side-segment record at {r}; that message was dropped",
                          file=sys.stderr)
                    continue
                return data
            if s == _S_COMMITTED:
                if seg.cas64(rec + 16, ~r, _MY_IDENTITY) == ~r:
                    seg.cas64(c + _Q_READ, r, r + size)  # ours: let the others move on at once
                    data = mm[rec + 32:rec + 32 + length]
                    if hold:
                        return r, length, data
                    seg.store64(rec + 8, _state_word(r, _S_CONSUMED))  # our read before the space is reused
                    self._space_sig.notify()
                    if seg.load64(c + _Q_READ) - seg.load64(c + _Q_HEAD) >= self.capacity // 4:
                        self._reclaim()  # notifies s1 itself when it freed space
                    return data
                seg.cas64(c + _Q_READ, r, r + size)  # another consumer has it: help
            elif s in (_S_CONSUMED, _S_ABANDONED):
                seg.cas64(c + _Q_READ, r, r + size)
            elif s == _S_WRITING:
                return None
            elif seg.load64(c + _Q_READ) == r:
                raise CorruptionError(f"queue '{seg.name}': unknown state {s} at {r}")

    def _pending(self):
        """(position, state, claim, producer identity) of a message being written at the read position, else None."""
        seg, c = self._seg, self._c
        r = seg.load64(c + _Q_READ)
        if r == seg.load64(c + _Q_TAIL):
            return None
        rec = self._data + (r & self._offmask)
        st, claim = seg.load64(rec + 8), seg.load64(rec) & _M64  # State, then Claim
        if claim & 31 not in (_K_MESSAGE, _K_SIDE) or st != _state_word(r, _S_WRITING):
            return None
        return r, st, claim, seg.load64(rec + 24) & _M64

    def _readable(self):
        """§6.7: something at the read position that is not a message still being written (a padding record keeps
        the stamp's "writing" state: readable, _take skips it); anything odd counts, so that _take looks closer."""
        seg, c = self._seg, self._c
        shut = self._shutdown_state()
        if shut == 2 or (shut == 1 and self._pending() is None):
            return True  # §6.9: get raises now (or drains what is left)
        r = seg.load64(c + _Q_READ)
        rec = self._data + (r & self._offmask)
        st, claim = seg.load64(rec + 8) & _M64, seg.load64(rec) & _M64  # State, then Claim
        if claim == ~r & _M64:
            return False
        if st >> 32 != (r >> 5) & 0xFFFFFFFF:
            return r != seg.load64(c + _Q_TAIL)
        return st & 0xFFFFFFFF != _S_WRITING or claim & 31 == _K_PADDING

    def _resolve_pending(self):
        """§6.6: a record at the read position whose producer is dead is abandoned."""
        pending = self._pending()
        if pending is None:
            return
        r, st, claim, ident = pending
        pid = claim >> 32
        alive = _identity_alive(ident) if _is_identity_word(ident) and (ident & 0xFFFFFFFF) >> 5 == pid else _is_alive(pid, 0, 0)
        if not alive and self._seg.cas64(self._data + (r & self._offmask) + 8, st, _state_word(r, _S_ABANDONED)) == st:
            self._data_sig.notify()

    def _take_or_shutdown(self):
        """_take, with §6.9: nothing after an immediate shutdown; ShutDown when shut down and drained (empty after a
        full fence that orders this look after every claim made before the word was set)."""
        if self._shutdown_state() == 2:
            self._raise_shutdown()
        data = self._take()
        if data is None and self._shutdown_state():
            shut = self._shutdown_state(fence=True)
            if shut == 2:
                self._raise_shutdown()
            data = self._take()
            if data is None and self._pending() is None:
                self._raise_shutdown()
        return data

    def get(self, block=True, timeout=None):
        """Takes the next message (bytes). queue.Empty when none within the timeout; ShutDown when the queue is shut
        down and nothing is left (at once after an immediate shutdown). On an acknowledged queue: take + ack."""
        deadline = _deadline(timeout) if block else 0
        while True:
            if self.acknowledged and self._shutdown_state() != 2:
                got = self._retake()
                if got is not None:
                    Delivery(self, *got).ack()
                    return got[2]
            data = self._take_or_shutdown()
            if data is not None:
                return data
            if deadline == 0 or (deadline is not None and time.monotonic() >= deadline):
                raise _queue.Empty
            self._data_sig.wait(self._readable, self._resolve_pending, deadline, self.spin, self.slice)

    def get_nowait(self):
        return self.get(block=False)

    # ---- §6.10 acknowledged delivery
    def take(self, block=True, timeout=None):
        """Acknowledged queue: the next message as a Delivery (data, delivery_count, ack(), nack()). queue.Empty when
        none within the timeout; ShutDown as get."""
        if not self.acknowledged:
            raise ValueError(f"queue '{self._seg.name}' is not acknowledged (LAYOUT.md §6.10)")
        deadline = _deadline(timeout) if block else 0
        while True:
            got = self._retake() if self._shutdown_state() != 2 else None
            if got is not None:
                return Delivery(self, *got)
            if self._shutdown_state() == 2:
                self._raise_shutdown()
            held = self._take(hold=True)
            if held is None and self._shutdown_state():
                held = self._take(hold=True) if self._shutdown_state(fence=True) != 2 else None
                if held is None and self._pending() is None:
                    self._raise_shutdown()
            if held is not None:
                return Delivery(self, held[0], held[1], held[2], self._deliveries_of(held[0]))  # 1, or a dead letter's count
            if deadline == 0 or (deadline is not None and time.monotonic() >= deadline):
                raise _queue.Empty
            before_sleep = lambda: (self._resolve_pending(), self._release_dead_takers())
            ready = lambda: self._readable() or self._seg.load64(self._c + _Q_REDELIVERIES) != self._redeliveries_seen
            self._data_sig.wait(ready, before_sleep, deadline, self.spin, min(self.slice, 0.02))

    def _records(self):
        """(position, record offset, state, length) of each message record in [Head, min(ReadPosition, Tail)), read
        State, Claim, State; continues from Head when reclaimed under the scan. Stops at anything else."""
        seg, c, cap = self._seg, self._c, self.capacity
        p = seg.load64(c + _Q_HEAD)
        limit = min(seg.load64(c + _Q_READ), seg.load64(c + _Q_TAIL))
        steps = cap // _ALIGN + 1
        while p < limit and steps > 0:
            steps -= 1
            off = p & self._offmask
            rec = self._data + off
            st = seg.load64(rec + 8) & _M64
            w = seg.load64(rec) & _M64
            d = self._decode(w, cap - off) if st >> 32 == (p >> 5) & 0xFFFFFFFF else None
            if d is None or seg.load64(rec + 8) & _M64 != st:
                h = seg.load64(c + _Q_HEAD)
                if h > p:
                    p = h
                    continue
                return
            if d[0] == _K_MESSAGE:
                yield p, rec, st & 0xFFFFFFFF, d[1]
            p += d[2]

    def _retake(self):
        """(position, length, bytes, delivery count) of a released record now taken by us, else None."""
        seg = self._seg
        seen = seg.load64(self._c + _Q_REDELIVERIES)
        if seen == self._redeliveries_seen:
            return None
        for p, rec, s, length in self._records():
            if s != _S_COMMITTED:
                continue
            reader = seg.load64(rec + 16) & _M64
            if reader & 0x1F != 4 or reader >> 32:
                continue
            n = (reader & 0xFFFFFFFF) >> 5
            max_deliveries = seg.load32(self._c + _Q_MAX_DELIVERIES)
            if max_deliveries and n >= max_deliveries:
                continue  # due for the dead-letter queue, which this peer does not write: left for a .NET consumer
            want = _to_signed64(((p >> 5) & 0xFFFFFFFF) << 32 | (n + 1) << 5 | 5)
            while True:  # raise Deliveries to n + 1 before the Reader CAS
                d = seg.load64(rec + 24)
                du = d & _M64
                if du & 0x1F == 5 and du >> 32 == (p >> 5) & 0xFFFFFFFF and (du & 0xFFFFFFFF) >> 5 >= n + 1:
                    break
                if seg.cas64(rec + 24, d, want) == d:
                    break
            if seg.cas64(rec + 16, _to_signed64(reader), _MY_IDENTITY) == _to_signed64(reader):
                return p, length, seg.mm[rec + 32:rec + 32 + length], n + 1
        self._redeliveries_seen = seen
        return None

    def _deliveries_of(self, p):
        """The Deliveries word of the record at p (§6.10): its count when tagged for p, else 1."""
        du = self._seg.load64(self._data + (p & self._offmask) + 24) & _M64
        return max(1, (du & 0xFFFFFFFF) >> 5) if du & 0x1F == 5 and du >> 32 == (p >> 5) & 0xFFFFFFFF else 1

    def _release(self, p, taker):
        """Reader taker -> Released(n), then Redeliveries += 1 and notify s0. True when released."""
        seg = self._seg
        rec = self._data + (p & self._offmask)
        if seg.load64(rec + 8) != _state_word(p, _S_COMMITTED) or seg.load64(rec + 16) & _M64 != taker:
            return False
        n = self._deliveries_of(p)
        if seg.cas64(rec + 16, _to_signed64(taker), n << 5 | 4) != _to_signed64(taker):
            return False
        _fadd64(seg, self._c + _Q_REDELIVERIES, 1)
        self._data_sig.notify()
        return True

    def _release_dead_takers(self):
        if not self.acknowledged:
            return 0
        released = 0
        for p, rec, s, _ in list(self._records()):
            reader = self._seg.load64(rec + 16) & _M64
            if s == _S_COMMITTED and _is_identity_word(reader) and reader != _MY_IDENTITY and not _identity_alive(reader):
                released += self._release(p, reader)
        return released

    def claim_only(self, length):
        """Testing only: claims a record and never commits it (a producer killed while writing)."""
        return self._claim(length)

    def close(self):
        """Unmaps; the creator also unlinks the names."""
        if self._seg is not None:
            self._sides.close()
            self._seg.close(unlink=self._seg.creator)
            self._seg = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------------------- §5 Pipe

_P_CONTROL, _P_RING0, _RING_CTL = 1152, 384, 384
# §5.7 shared ends: Holders words in each end slot, a lock word on each ring's Tail and Head line
_P_HOLDERS, _P_MAX_HOLDERS, _P_KNOWN_FLAGS, _P_SHARED_OWNER = 16, 14, 7, 3
_P_ASYMMETRIC_FENCE = 4  # Flags bit 2 (§4): waiters issue membarrier(GLOBAL_EXPEDITED) after registering
_RG_SEND_LOCK, _RG_RECV_LOCK = 8, 136


def _is_handover_word(w):
    return (w & 0x1F) == 2 and (w >> 5) != 0


class Connection:
    """One end of a ShmIpc Pipe, like multiprocessing.connection.Connection for bytes."""

    def __init__(self, seg, end):
        self._seg = seg
        mm, c = seg.mm, _HDR
        self._cap, self._max = struct.unpack_from("<qq", mm, c)
        self.max_message_length = self._max
        rings = _I32.unpack_from(mm, c + 16)[0]
        self._mask = self._cap - 1
        self._own = c + 128 + 128 * end
        self._peer = c + 128 + 128 * (1 - end)
        self._peer_gone = False
        self._next_liveness = 0.0
        self._shared, self._holder = False, -1  # §5.7: set by Pipe.attach_shared
        self._sides = _SideSegments(seg)  # §8: messages longer than the ring
        self.spin, self.slice = 50e-6, 0.1
        self._recv = self._ring(end) if end < rings else None
        self._send = self._ring(1 - end) if 1 - end < rings else None
        if self._recv:
            self._head = seg.load64(self._recv["head"])
            self._tail_cache = seg.load64(self._recv["tail"])
        if self._send:
            self._tail = seg.load64(self._send["tail"])
            self._head_cache = seg.load64(self._send["head"])

    def _ring(self, r):
        seg, rc = self._seg, _HDR + _P_RING0 + _RING_CTL * r
        marked = bool(seg.load32(_HDR + 20) & _P_ASYMMETRIC_FENCE)  # Flags (§5.2) bit 2: §4 asymmetric form
        return {"tail": rc, "head": rc + 128, "data": _HDR + _P_CONTROL + r * self._cap,
                "data_sig": _Signal(seg, rc + 256, seg.sems[2 * r], marked),
                "space_sig": _Signal(seg, rc + 320, seg.sems[2 * r + 1], marked)}

    # ---- peer state (§5.6)
    def _peer_closed(self):
        return self._peer_gone or self._seg.load64(self._peer + 8) != 0  # acquire: pairs with the peer's release

    def _check_peer_alive(self):
        now = time.monotonic()
        if self._peer_gone or now < self._next_liveness:
            return
        self._next_liveness = now + 0.005
        w = self._seg.load64(self._peer) & _M64
        if w == _P_SHARED_OWNER:
            if not self._holders_left(self._peer):
                self._peer_gone = True
            return
        if _is_identity_word(w) and not _identity_alive(w) and self._seg.load64(self._peer) & _M64 == w:
            self._peer_gone = True

    # ---- shared ends (§5.7)
    def _holders_left(self, slot):
        """A live identity or a pending token among the 14 Holders words; "none" needs two equal scans."""
        prev = None
        while True:
            words = [self._seg.load64(slot + _P_HOLDERS + 8 * i) & _M64 for i in range(_P_MAX_HOLDERS)]
            for w in words:
                if w and (not _is_identity_word(w) or _identity_alive(w)):
                    return True  # a live holder, a pending token (or garbage: never declare an end gone on it)
            if words == prev:
                return False
            prev = words

    def _lock(self, word, deadline):
        """CAS 0 -> my identity; a holder proved dead (pid + start time) is taken over by CAS from its word."""
        next_check, spins = 0.0, 0
        while True:
            w = self._seg.cas64(word, 0, _MY_IDENTITY) & _M64
            if w == 0:
                return True
            if not _is_identity_word(w):
                raise CorruptionError(f"pipe '{self._seg.name}': lock word 0x{w:016x} is neither 0 nor an identity")
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.005
                if not _identity_alive(w) and self._seg.cas64(word, w, _MY_IDENTITY) & _M64 == w:
                    return True
            if deadline is not None and now >= deadline:
                return False
            spins += 1
            time.sleep(0 if spins < 64 else 0.0005)

    def _unlock(self, word):
        self._seg.cas64(word, _MY_IDENTITY, 0)  # never a plain store (§5.7)

    def _positions(self, ring):
        t, h = self._seg.load64(ring["tail"]), self._seg.load64(ring["head"])
        if not 0 <= t - h <= self._cap or (t | h) & 7:
            raise CorruptionError(f"pipe '{self._seg.name}': head {h} and tail {t} out of range")
        return t, h

    def _send_shared(self, data, deadline, kind=1):
        lock = self._send["tail"] + _RG_SEND_LOCK
        size_ = 8 + ((len(data) + 7) & ~7)

        def space():
            t, h = self._seg.load64(self._send["tail"]), self._seg.load64(self._send["head"])
            to_end = self._cap - (t & self._mask)
            req = size_ if size_ <= to_end else to_end + size_
            return self._peer_closed() or not 0 <= t - h <= self._cap or t + req - h <= self._cap

        while True:
            if not self._lock(lock, deadline):
                raise TimeoutError(f"pipe '{self._seg.name}': the send lock stayed taken")
            try:
                self._tail, self._head_cache = self._positions(self._send)  # resume from the shared Tail
                written = self._write(data, kind=kind)
            finally:
                self._unlock(lock)
            if written:
                self._send["data_sig"].notify()
                return
            ok = self._send["space_sig"].wait(space, self._check_peer_alive, deadline, self.spin, self.slice)
            if self._peer_closed():
                raise PeerClosedError(f"pipe '{self._seg.name}': the other end is gone")
            if not ok:
                raise TimeoutError(f"pipe '{self._seg.name}' stayed full")

    def _recv_shared(self, deadline, timeout):
        lock = self._recv["tail"] + _RG_RECV_LOCK

        def readable():
            return self._seg.load64(self._recv["tail"]) != self._seg.load64(self._recv["head"]) or self._peer_closed()

        last = False
        while True:
            closed = self._peer_closed()  # before the look at Tail: "closed and empty" is then final
            if not self._lock(lock, deadline):
                raise TimeoutError(f"pipe '{self._seg.name}': the receive lock stayed taken")
            try:
                self._tail_cache, self._head = self._positions(self._recv)  # resume from the shared Head
                data = self._read() if self._head != self._tail_cache else None
            finally:
                self._unlock(lock)
            if data is not None:
                return data
            if closed:
                raise PeerClosedError(f"pipe '{self._seg.name}': the other end is closed")
            if last:
                raise TimeoutError(f"pipe '{self._seg.name}': nothing within {timeout} s")
            last = not self._recv["data_sig"].wait(readable, self._check_peer_alive, deadline, self.spin, self.slice)

    # ---- send (§5.4)
    def _fits(self, required):
        if self._tail + required - self._head_cache <= self._cap:
            return True
        h = self._seg.load64(self._send["head"])  # acquire: pairs with the consumer's release of Head
        if not (0 <= self._tail - h <= self._cap) or h & 7:
            raise CorruptionError(f"pipe '{self._seg.name}': head {h} out of range")
        self._head_cache = h
        return self._tail + required - h <= self._cap

    def _write(self, data, publish=True, kind=1):
        n = len(data)
        size = 8 + ((n + 7) & ~7)
        idx = self._tail & self._mask
        to_end = self._cap - idx
        required = size if size <= to_end else to_end + size
        if not self._fits(required):
            return False
        mm, base = self._seg.mm, self._send["data"]
        rec = base + idx
        # pack_into zero-fills before writing: harmless here, the consumer reads nothing beyond Tail.
        if size > to_end:
            struct.pack_into("<ii", mm, rec, to_end - 8, 2)
            rec = base
        struct.pack_into("<ii", mm, rec, n, kind)
        mm[rec + 8:rec + 8 + n] = data
        if publish:
            self._tail += required
            self._seg.store64(self._send["tail"], self._tail)  # release: publishes the record
        return True

    def send_bytes(self, buf, offset=0, size=None, timeout=None):
        """Sends bytes (all of buf, or buf[offset:offset+size]). PeerClosedError when the other end is gone;
        TimeoutError when no room within the timeout (nothing sent)."""
        if self._send is None:
            raise OSError("this end of a one-way pipe only receives")
        data = bytes(memoryview(buf)[offset:None if size is None else offset + size])
        if len(data) > _SIDE_MAX_LENGTH:
            raise ValueError(f"message of {len(data)} bytes; pipe '{self._seg.name}' carries at most {_SIDE_MAX_LENGTH}")
        if self._peer_closed():
            raise PeerClosedError(f"pipe '{self._seg.name}': the other end is closed")
        if len(data) <= self._max:
            return self._send_record(data, 1, timeout)
        # §8: longer than the ring takes: into a side segment, the ring carries a type-3 record naming it
        side = self._sides.publish(data)
        written = False
        try:
            self._send_record(self._sides.record(side, len(data)), 3, timeout)
            written = True
        finally:
            self._sides.keep(side, written)

    def _send_record(self, data, kind, timeout):
        deadline = _deadline(timeout)
        if self._shared:
            return self._send_shared(data, deadline, kind)
        while not self._write(data, kind=kind):
            size_ = 8 + ((len(data) + 7) & ~7)
            to_end = self._cap - (self._tail & self._mask)
            req = size_ if size_ <= to_end else to_end + size_
            ok = self._send["space_sig"].wait(lambda: self._peer_closed() or self._fits(req), self._check_peer_alive,
                                              deadline, self.spin, self.slice)
            if self._peer_closed():
                raise PeerClosedError(f"pipe '{self._seg.name}': the other end is gone")
            if not ok:
                if self._write(data, kind=kind):
                    break
                raise TimeoutError(f"pipe '{self._seg.name}' stayed full")
        self._send["data_sig"].notify()

    # ---- receive (§5.5)
    def _has_data(self):
        if self._head != self._tail_cache:
            return True
        t = self._seg.load64(self._recv["tail"])  # acquire: pairs with the producer's release of Tail
        if t == self._head:
            return False
        if not (0 < t - self._head <= self._cap) or t & 7:
            raise CorruptionError(f"pipe '{self._seg.name}': tail {t} out of range")
        self._tail_cache = t
        return True

    def _read(self):
        mm, base = self._seg.mm, self._recv["data"]
        head, avail = self._head, self._tail_cache - self._head
        idx = head & self._mask
        length, kind = struct.unpack_from("<ii", mm, base + idx)  # read once; only the locals are used
        if kind == 2:
            to_end = self._cap - idx
            if length != to_end - 8 or avail <= to_end:
                raise CorruptionError(f"pipe '{self._seg.name}': bad padding record at {head}")
            head += to_end
            avail -= to_end
            idx = 0
            length, kind = struct.unpack_from("<ii", mm, base)
        size = 8 + ((length + 7) & ~7)
        if kind not in (1, 3) or not 0 <= length <= (self._max if kind == 1 else _SR_MAX) or size > avail or size > self._cap - idx:
            raise CorruptionError(f"pipe '{self._seg.name}': bad record (type {kind}, length {length}) at {head}")
        data = mm[base + idx + 8:base + idx + 8 + length]
        self._head = head + size
        if kind == 3:  # §8: the record names a side segment; consumed whatever that holds
            try:
                data = self._sides.read(data)
            finally:
                self._seg.store64(self._recv["head"], self._head)
                self._recv["space_sig"].notify()
            return data
        self._seg.store64(self._recv["head"], self._head)  # release: our read is done before the bytes are reused
        self._recv["space_sig"].notify()
        return data

    def _readable(self):
        return self._has_data() or self._peer_closed()

    def poll(self, timeout=0.0):
        """True when recv_bytes would not block (a message waits, or the peer is gone)."""
        if self._recv is None:
            raise OSError("this end of a one-way pipe only sends")
        if self._readable():
            return True
        if timeout is not None and timeout <= 0:
            return False
        return self._recv["data_sig"].wait(self._readable, self._check_peer_alive, _deadline(timeout), self.spin, self.slice)

    def recv_bytes(self, timeout=None):
        """The next message (bytes). PeerClosedError (an EOFError) once the other end is gone and everything
        it sent has been received; TimeoutError when nothing came within the timeout."""
        if self._recv is None:
            raise OSError("this end of a one-way pipe only sends")
        deadline = _deadline(timeout)
        if self._shared:
            return self._recv_shared(deadline, timeout)
        while True:
            if self._has_data():
                return self._read()
            if self._peer_closed():
                if self._has_data():  # drained after seeing "closed"
                    return self._read()
                raise PeerClosedError(f"pipe '{self._seg.name}': the other end is closed")
            if not self._recv["data_sig"].wait(self._readable, self._check_peer_alive, deadline, self.spin, self.slice):
                if self._has_data():
                    return self._read()
                raise TimeoutError(f"pipe '{self._seg.name}': nothing within {timeout} s")

    def write_uncommitted(self, data):
        """Testing only: writes a record past Tail without publishing it (killed mid-write)."""
        if self._shared:
            raise OSError("a shared end publishes before it lets go of the send lock (LAYOUT.md §5.7)")
        return self._write(bytes(data), publish=False)

    def close(self):
        """Closes this end (the peer drains, then gets PeerClosedError); the creator's end also unlinks."""
        if self._seg is None:
            return
        last = True
        if self._shared:  # §5.7: clear our Holders word; only the last holder closes the end for the peer
            self._seg.cas64(self._own + _P_HOLDERS + 8 * self._holder, _MY_IDENTITY, 0)
            last = not self._holders_left(self._own)
        if last:
            self._seg.store64(self._own + 8, 1)  # release, after our last Tail store
        if self._send:
            self._send["data_sig"].notify()
        if self._recv:
            self._recv["space_sig"].notify()
        self._sides.close()
        self._seg.close(unlink=self._seg.creator)
        self._seg = None

    @property
    def closed(self):
        return self._seg is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Pipe:
    """Factory for the two ends of a ShmIpc Pipe."""

    @staticmethod
    def _open_validated(name):
        seg = _Segment(name, _KIND_PIPE)
        try:
            mm, c = seg.mm, _HDR
            cap, maxlen, rings, flags = struct.unpack_from("<qqiI", mm, c)
            csize, dsize = struct.unpack_from("<Q", mm, 40)[0], struct.unpack_from("<Q", mm, 56)[0]
            ok = (csize == _P_CONTROL and 1024 <= cap <= 1 << 30 and not cap & (cap - 1) and rings in (1, 2)
                  and not flags & ~_P_KNOWN_FLAGS
                  and 0 <= maxlen <= cap // 2 - 8 and dsize == rings * cap and len(seg.sems) == 2 * rings)
            for r in range(rings if ok else 0):
                rc = c + _P_RING0 + _RING_CTL * r
                t, h = seg.load64(rc), seg.load64(rc + 128)
                ok = ok and h >= 0 and not (h | t) & 7 and 0 <= t - h <= cap
            if not ok:
                raise InvalidSegmentError(name, "Corrupted", "pipe control block out of range")
            return seg
        except BaseException:
            seg.close(unlink=False)
            raise

    @staticmethod
    def connect(name):
        """Connects as end 1. FileNotFoundError when absent; ShmIpcError when the second end is taken."""
        seg = Pipe._open_validated(name)
        try:
            conn = Connection(seg, 1)
            if seg.cas64(_HDR + 256, 0, _MY_IDENTITY) != 0:  # claim end 1, last
                raise ShmIpcError(f"pipe '{name}' already has its second end connected")
            return conn
        except BaseException:
            seg.close(unlink=False)
            raise

    @staticmethod
    def attach_shared(token):
        """Attaches to a shared end with a share token "shmpipe2:<end>:<slot>:<nonce>:<unlink>:<name>" (LAYOUT.md §5.7): this
        process becomes one of several senders (and receivers) on that end, each send under the end's lock.
        ShmIpcError when the token was used already."""
        parts = token.split(":", 5)  # parts[4], the creator's unlink duty, is for .NET holders: this peer never unlinks it
        if len(parts) != 6 or parts[0] != "shmpipe2" or parts[1] not in ("0", "1") or not parts[2].isdigit() or parts[4] not in ("0", "1"):
            raise ValueError(f"'{token}' is not a pipe share token")
        end, slot, nonce = int(parts[1]), int(parts[2]), int(parts[3], 16)
        if slot >= _P_MAX_HOLDERS or not _is_handover_word(nonce):
            raise ValueError(f"'{token}' is not a pipe share token")
        seg = Pipe._open_validated(parts[5])
        try:
            conn = Connection(seg, end)
            word = conn._own + _P_HOLDERS + 8 * slot
            if seg.cas64(word, nonce, _MY_IDENTITY) & _M64 != nonce:
                raise ShmIpcError(f"pipe '{parts[5]}': the share token was used already")
            if not struct.unpack_from("<I", seg.mm, _HDR + 20)[0] & (1 << end):  # read after our CAS
                seg.cas64(word, _MY_IDENTITY, nonce)
                raise CorruptionError(f"pipe '{parts[5]}': end {end} is not marked shared")
            conn._shared, conn._holder = True, slot
            return conn
        except BaseException:
            seg.close(unlink=False)
            raise

    @staticmethod
    def create(name, capacity=256 * 1024, max_message_length=None, duplex=True):
        """Creates the pipe and returns end 0 (which unlinks the names when closed)."""
        if capacity < 1024 or capacity > 1 << 30 or capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two from 1 KiB to 1 GiB")
        maxlen = capacity // 4 if max_message_length is None else max_message_length
        if not 0 <= maxlen <= capacity // 2 - 8:
            raise ValueError(f"max_message_length must be from 0 to {capacity // 2 - 8}")
        rings = 2 if duplex else 1
        seg = _Segment(name, _KIND_PIPE, create=(_P_CONTROL, rings * capacity, 2 * rings))
        struct.pack_into("<qqiI", seg.mm, _HDR, capacity, maxlen, rings, 0)
        struct.pack_into("<Q", seg.mm, _HDR + 128, _MY_IDENTITY)
        conn = Connection(seg, 0)
        seg.publish()
        return conn


# ------------------------------------------------------------------------------------------- §7 shared state

_KIND_SHARED_MEMORY, _KIND_LOCK, _KIND_EVENT, _KIND_SEMAPHORE = 3, 7, 8, 9
_L_OWNER, _L_THREAD, _L_DEPTH, _L_SLEEPERS, _L_FLAGS = 0, 8, 12, 16, 20
_E_STATE, _E_FLAGS, _E_GENERATION, _E_SLEEPERS = 0, 4, 8, 16
_ME = _to_signed64(_MY_IDENTITY)


class LockAbandonedError(ShmIpcError):
    """The lock's holder died holding it (LAYOUT.md §7.3). Raised by acquire() WITH THE LOCK HELD by the caller:
    check the state it protects, then release()."""

    def __init__(self, name, pid):
        super().__init__(f"lock '{name}' was abandoned by pid {pid}; this process holds it now")
        self.pid = pid


def _control_shape(seg, control_size, data_size, nsems):
    csize, dsize = struct.unpack_from("<QQ", seg.mm, 40)[0], struct.unpack_from("<Q", seg.mm, 56)[0]
    return csize == control_size and (data_size is None or dsize == data_size) and len(seg.sems) == nsems


class SharedMemory:
    """multiprocessing.shared_memory.SharedMemory over a ShmIpc SharedMemory segment (§7.1): .buf is the block."""

    def __init__(self, seg):
        self._seg = seg
        self.name = seg.name
        self.size = _I64.unpack_from(seg.mm, _HDR)[0]
        self.buf = memoryview(seg.mm)[_HDR + 128:_HDR + 128 + self.size]

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_SHARED_MEMORY)
        try:
            dsize = struct.unpack_from("<Q", seg.mm, 56)[0]
            if not _control_shape(seg, 128, None, 0) or _I64.unpack_from(seg.mm, _HDR)[0] != dsize or dsize < 1:
                raise InvalidSegmentError(name, "Corrupted", "shared memory control block out of range")
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    @classmethod
    def create(cls, name, size):
        if size < 1:
            raise ValueError("size must be at least 1 byte")
        seg = _Segment(name, _KIND_SHARED_MEMORY, create=(128, size, 0))
        struct.pack_into("<q", seg.mm, _HDR, size)
        seg.publish()
        return cls(seg)

    def close(self):
        self.buf.release()
        self._seg.close(unlink=self._seg.creator)


class Lock:
    """A ShmIpc Lock (§7.3), like multiprocessing.Lock (and RLock when its creator made it recursive). A holder that
    dies (even by SIGKILL) is taken over by the next acquirer within one sleep slice: acquire() then raises
    LockAbandonedError with the lock held. A live holder is never overtaken."""

    def __init__(self, seg, block=_HDR, owns=True):
        self._seg, self._b, self._owns = seg, block, owns  # owns=False: the lock block of an Array or Value (§7.2)
        self.recursive = (_U32.unpack_from(seg.mm, block + _L_FLAGS)[0] & 1) != 0
        self._sig = _Signal(seg, block + _L_SLEEPERS, seg.sems[0])
        self.spin, self.slice = 50e-6, 0.1

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_LOCK)
        try:
            if not _control_shape(seg, 128, 0, 1) or _U32.unpack_from(seg.mm, _HDR + _L_FLAGS)[0] & ~1:
                raise InvalidSegmentError(name, "Corrupted", "lock control block out of range")
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    @classmethod
    def create(cls, name, recursive=False):
        seg = _Segment(name, _KIND_LOCK, create=(128, 0, 1))
        struct.pack_into("<I", seg.mm, _HDR + _L_FLAGS, 1 if recursive else 0)
        seg.publish()
        return cls(seg)

    @staticmethod
    def _thread():
        return threading.get_ident() & 0x7FFFFFFF or 1

    def _took(self):
        self._seg.xchg32(self._b + _L_THREAD, self._thread())
        self._seg.xchg32(self._b + _L_DEPTH, 1)

    def _try(self):
        seg, o = self._seg, self._b + _L_OWNER
        return seg.load64(o) == 0 and seg.cas64(o, 0, _MY_IDENTITY) == 0

    def acquire(self, block=True, timeout=None):
        seg, b = self._seg, self._b
        if self._try():
            self._took()
            return True
        if seg.load64(b + _L_OWNER) == _ME and seg.load32(b + _L_THREAD) == self._thread():
            if not self.recursive:
                raise RuntimeError(f"this thread holds lock '{seg.name}' already and it is not recursive")
            seg.xchg32(b + _L_DEPTH, seg.load32(b + _L_DEPTH) + 1)
            return True
        abandoned = []

        def ready():
            return bool(abandoned) or self._try()

        def before_sleep():
            owner = seg.load64(b + _L_OWNER)
            if owner in (0, _ME):
                return
            word = owner & _M64
            if _is_identity_word(word) and _identity_alive(word):
                return
            if seg.cas64(b + _L_OWNER, word, _MY_IDENTITY) == owner:
                abandoned.append((word & 0xFFFFFFFF) >> 5 if _is_identity_word(word) else 0)

        deadline = _deadline(timeout) if block else time.monotonic()
        if not self._sig.wait(ready, before_sleep, deadline, 0 if not block else self.spin, self.slice):
            return False
        self._took()
        if abandoned:
            raise LockAbandonedError(seg.name, abandoned[0])
        return True

    def release(self):
        seg, b = self._seg, self._b
        if seg.load64(b + _L_OWNER) != _ME or (self.recursive and seg.load32(b + _L_THREAD) != self._thread()):
            raise RuntimeError(f"release of lock '{seg.name}' by a process (or thread) that does not hold it")
        if self.recursive:
            depth = seg.load32(b + _L_DEPTH)
            if depth > 1:
                seg.xchg32(b + _L_DEPTH, depth - 1)
                return
        seg.xchg32(b + _L_THREAD, 0)
        seg.cas64(b + _L_OWNER, _MY_IDENTITY, 0)  # seq_cst: publishes the protected writes; the notifier's fence
        self._sig.notify()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def _held_here(self):
        seg, b = self._seg, self._b
        return seg.load64(b + _L_OWNER) == _ME and (not self.recursive or seg.load32(b + _L_THREAD) == self._thread())

    def close(self):
        """Closes the handle; for the lock of an Array or Value, nothing (it is closed with that object)."""
        if self._owns:
            self._seg.close(unlink=self._seg.creator)


class Event:
    """A ShmIpc Event (§7.4), like multiprocessing.Event (auto-reset when its creator asked: one waiter per set())."""

    def __init__(self, seg):
        self._seg = seg
        self.auto_reset = (_U32.unpack_from(seg.mm, _HDR + _E_FLAGS)[0] & 1) != 0
        self._sig = _Signal(seg, _HDR + _E_SLEEPERS, seg.sems[0])
        self.spin, self.slice = 50e-6, 0.1

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_EVENT)
        try:
            if not _control_shape(seg, 128, 0, 1) or _U32.unpack_from(seg.mm, _HDR + _E_FLAGS)[0] & ~1:
                raise InvalidSegmentError(name, "Corrupted", "event control block out of range")
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    @classmethod
    def create(cls, name, auto_reset=False, initial=False):
        seg = _Segment(name, _KIND_EVENT, create=(128, 0, 1))
        struct.pack_into("<iI", seg.mm, _HDR, 1 if initial else 0, 1 if auto_reset else 0)
        seg.publish()
        return cls(seg)

    def is_set(self):
        return self._seg.load32(_HDR + _E_STATE) != 0

    def set(self):
        seg = self._seg
        seg.xchg32(_HDR + _E_STATE, 1)  # seq_cst: at least the release the layout asks for
        if not self.auto_reset:
            g = seg.load64(_HDR + _E_GENERATION)
            while True:
                seen = seg.cas64(_HDR + _E_GENERATION, g, g + 1)
                if seen == g:
                    break
                g = seen
        self._sig.notify()

    def clear(self):
        self._seg.xchg32(_HDR + _E_STATE, 0)

    def wait(self, timeout=None):
        seg = self._seg
        if self.auto_reset:
            def ready():
                return seg.load32(_HDR + _E_STATE) != 0 and seg.cas32(_HDR + _E_STATE, 1, 0) == 1
        else:
            g0 = seg.load64(_HDR + _E_GENERATION)

            def ready():
                return seg.load32(_HDR + _E_STATE) != 0 or seg.load64(_HDR + _E_GENERATION) != g0
        return self._sig.wait(ready, lambda: None, _deadline(timeout), self.spin, self.slice)

    def close(self):
        self._seg.close(unlink=self._seg.creator)


class Semaphore:
    """A ShmIpc Semaphore (§7.5), like multiprocessing.BoundedSemaphore: acquire() takes a count, release(n) adds n
    (ValueError past the maximum, nothing added) and returns the count before."""

    def __init__(self, seg):
        self._seg = seg
        self.maximum = _I32.unpack_from(seg.mm, _HDR + 4)[0]
        self._sig = _Signal(seg, _HDR + 8, seg.sems[0])
        self.spin, self.slice = 50e-6, 0.1

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_SEMAPHORE)
        try:
            count, maximum = struct.unpack_from("<ii", seg.mm, _HDR)
            if not _control_shape(seg, 128, 0, 1) or maximum < 1 or not 0 <= count <= maximum:
                raise InvalidSegmentError(name, "Corrupted", "semaphore control block out of range")
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    def _take(self):
        seg = self._seg
        cur = seg.load32(_HDR)
        while cur > 0:
            seen = seg.cas32(_HDR, cur, cur - 1)
            if seen == cur:
                return True
            cur = seen
        return False

    def acquire(self, block=True, timeout=None):
        if self._take():
            return True
        if not block:
            return False
        return self._sig.wait(self._take, lambda: None, _deadline(timeout), self.spin, self.slice)

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be at least 1")
        seg = self._seg
        cur = seg.load32(_HDR)
        while True:
            if cur > self.maximum - n:
                raise ValueError(f"semaphore '{seg.name}' would pass its maximum of {self.maximum}")
            seen = seg.cas32(_HDR, cur, cur + n)
            if seen == cur:
                break
            cur = seen
        self._sig.notify()
        return cur

    def close(self):
        self._seg.close(unlink=self._seg.creator)


# ------------------------------------------------------------------------------------------- §7.1 Counter, §7.2 Array, Value

_KIND_ARRAY, _KIND_VALUE, _KIND_COUNTER, _KIND_CONDITION, _KIND_BARRIER = 4, 5, 6, 10, 11
_A_CONTROL, _A_ELEMENT_SIZE, _A_LENGTH, _A_LOCK = 256, 0, 8, 128


def _refuse(seg, what, detail):
    """Closes a segment whose control block failed validation and returns the error naming it."""
    seg.close(unlink=False)
    return InvalidSegmentError(seg.name, "Corrupted", f"{what} '{seg.name}': {detail}")


def _fadd64(seg, off, delta):
    """Atomic 64-bit add (a seq_cst CAS loop; wraps as .NET's Interlocked.Add); returns the new value."""
    cur = seg.load64(off)
    while True:
        new = _to_signed64((cur + delta) & _M64)
        seen = seg.cas64(off, cur, new)
        if seen == cur:
            return new
        cur = seen


class Counter:
    """A ShmIpc Counter (§7.1): a 64-bit value changed only by atomic read-modify-writes (seq_cst); no lock, no syscall."""

    def __init__(self, seg):
        self._seg, self.name = seg, seg.name

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_COUNTER)
        if not _control_shape(seg, 128, 0, 0):
            raise _refuse(seg, "counter", "control block, data or semaphores out of shape (a counter has 128 bytes, 0, 0)")
        return cls(seg)

    @classmethod
    def create(cls, name, initial=0):
        seg = _Segment(name, _KIND_COUNTER, create=(128, 0, 0))
        _I64.pack_into(seg.mm, _HDR, initial)  # published by the release store of Magic
        seg.publish()
        return cls(seg)

    @property
    def value(self):
        return self._seg.load64(_HDR)

    def add(self, delta=1):
        """Adds delta; returns the new value."""
        return _fadd64(self._seg, _HDR, delta)

    def increment(self):
        return _fadd64(self._seg, _HDR, 1)

    def exchange(self, value):
        """Sets the value; returns the one it had."""
        seg, cur = self._seg, self._seg.load64(_HDR)
        while True:
            seen = seg.cas64(_HDR, cur, value)
            if seen == cur:
                return cur
            cur = seen

    def compare_exchange(self, value, comparand):
        """Sets the value to `value` if it equals `comparand`; returns the value it had."""
        return self._seg.cas64(_HDR, comparand, value)

    def close(self):
        self._seg.close(unlink=self._seg.creator)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_array(name, kind, typecode):
    """Opens and validates an Array or Value segment (§7.2) for elements of `typecode`; returns (segment, length)."""
    size = struct.calcsize(typecode)
    what = "array" if kind == _KIND_ARRAY else "value"
    seg = _Segment(name, kind)
    if not _control_shape(seg, _A_CONTROL, None, 1):  # first: the words below are inside a control block of this size
        raise _refuse(seg, what, f"control block or semaphores out of shape (an array has {_A_CONTROL} bytes and 1 semaphore)")
    stored, length = _I32.unpack_from(seg.mm, _HDR + _A_ELEMENT_SIZE)[0], _I64.unpack_from(seg.mm, _HDR + _A_LENGTH)[0]
    dsize = struct.unpack_from("<Q", seg.mm, 56)[0]
    flags = _U32.unpack_from(seg.mm, _HDR + _A_LOCK + _L_FLAGS)[0]
    if stored != size:
        raise _refuse(seg, what, f"elements of {stored} bytes, the opener's typecode {typecode!r} has {size}")
    if not 0 <= length <= 0x7FFFFFFF or length * stored != dsize:
        raise _refuse(seg, what, f"length {length} of {stored}-byte elements does not match the data region of {dsize} bytes")
    if kind == _KIND_VALUE and length != 1:
        raise _refuse(seg, what, f"a value holds one element, this one {length}")
    if flags & ~1:
        raise _refuse(seg, what, f"lock flags 0x{flags:X}: unknown bits")
    return seg, length


def _create_array(name, kind, typecode, length, first=None):
    size = struct.calcsize(typecode)
    if not 0 <= length <= 0x7FFFFFFF:
        raise ValueError("length must be 0 .. 2**31-1")
    seg = _Segment(name, kind, create=(_A_CONTROL, size * length, 1))
    struct.pack_into("<iiq", seg.mm, _HDR, size, 0, length)
    struct.pack_into("<I", seg.mm, _HDR + _A_LOCK + _L_FLAGS, 1)  # recursive, as Python's get_lock()
    if first is not None and length:
        struct.pack_into(typecode, seg.mm, _HDR + _A_CONTROL, first)
    seg.publish()
    return seg


class Array:
    """A ShmIpc Array (§7.2), like multiprocessing.Array: `length` elements of a struct typecode ('q', 'd', 'i', ...: the
    opener's size must equal the creator's), indexable, `.buf` a memoryview over them, `numpy()` an ndarray over the same
    memory (numpy is imported only then), `get_lock()` the recursive lock stored in the same segment; `with arr:` holds it.
    Elements are plain memory: take the lock around updates that other processes must see whole. Release `.buf`
    slices and numpy views before close()."""

    _KIND = _KIND_ARRAY

    def __init__(self, seg, typecode, length):
        self._seg, self.name, self.typecode, self.length = seg, seg.name, typecode, length
        start = _HDR + _A_CONTROL
        self._raw = memoryview(seg.mm)[start:start + length * struct.calcsize(typecode)]
        self.buf = self._raw.cast(typecode)
        self._lock = Lock(seg, _HDR + _A_LOCK, owns=False)

    @classmethod
    def open(cls, name, typecode):
        seg, length = _open_array(name, cls._KIND, typecode)
        return cls(seg, typecode, length)

    @classmethod
    def create(cls, name, typecode, length):
        return cls(_create_array(name, cls._KIND, typecode, length), typecode, length)

    def get_lock(self):
        return self._lock

    def acquire(self, block=True, timeout=None):
        return self._lock.acquire(block, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return self.buf[index]

    def __setitem__(self, index, value):
        self.buf[index] = value

    def numpy(self):
        """A numpy.ndarray over the elements (no copy). Needs numpy; delete it before close()."""
        import numpy  # optional: only this method needs it
        return numpy.frombuffer(self._seg.mm, dtype=numpy.dtype(self.typecode), count=self.length, offset=_HDR + _A_CONTROL)

    def close(self):
        self.buf.release()
        self._raw.release()
        self._seg.close(unlink=self._seg.creator)


class Value(Array):
    """A ShmIpc Value (§7.2, its own kind): one element, `.value`, and `get_lock()` as multiprocessing.Value."""

    _KIND = _KIND_VALUE

    @classmethod
    def open(cls, name, typecode):
        seg, _ = _open_array(name, cls._KIND, typecode)
        return cls(seg, typecode, 1)

    @classmethod
    def create(cls, name, typecode, initial=0):
        return cls(_create_array(name, cls._KIND, typecode, 1, initial), typecode, 1)

    @property
    def value(self):
        return self.buf[0]

    @value.setter
    def value(self, v):
        self.buf[0] = v


# ------------------------------------------------------------------------------------------- §7.6 Condition

_C_CONTROL, _C_SLEEPERS, _C_SLOT_COUNT, _C_SLOTS, _C_SLOT, _C_NSLOTS, _C_TICKET = 1152, 0, 4, 128, 16, 64, 8
_TICKET_WAITING, _TICKET_NOTIFIED, _TICKET_WITHDRAWN = 0, 1, 2


class Condition:
    """A ShmIpc Condition (§7.6), like multiprocessing.Condition, bound to a Lock every process names when it opens it (the
    lock's name is not stored). wait() and notify() need the lock held; `with cond:` holds it. At most 64 waiters.

    Design: a waiter claims a slot (CAS Owner 0 -> me) holding the lock, releases the lock (a recursive one wholly), and
    waits (§4) for its Ticket to turn 1; a notifier, holding the lock, CASes Ticket 0 -> 1 on waiting slots of live owners
    (a dead owner's slot is freed). A waiter whose time runs out withdraws by CAS Ticket 0 -> 2 (finding 1 there, it was
    notified after all); it then stores Ticket 0 and Owner 0, and takes the lock back."""

    def __init__(self, seg, lock):
        self._seg, self.name, self._lock = seg, seg.name, lock
        self._sig = _Signal(seg, _HDR + _C_SLEEPERS, seg.sems[0])
        self.spin, self.slice = 50e-6, 0.1

    @classmethod
    def open(cls, name, lock):
        seg = _Segment(name, _KIND_CONDITION)
        if not _control_shape(seg, _C_CONTROL, 0, 1):
            raise _refuse(seg, "condition", f"control block, data or semaphores out of shape (a condition has {_C_CONTROL} bytes, 0, 1)")
        slots = _I32.unpack_from(seg.mm, _HDR + _C_SLOT_COUNT)[0]
        if slots != _C_NSLOTS:
            raise _refuse(seg, "condition", f"{slots} slots, a condition has {_C_NSLOTS}")
        return cls(seg, lock)

    @classmethod
    def create(cls, name, lock):
        seg = _Segment(name, _KIND_CONDITION, create=(_C_CONTROL, 0, 1))
        struct.pack_into("<i", seg.mm, _HDR + _C_SLOT_COUNT, _C_NSLOTS)
        seg.publish()
        return cls(seg, lock)

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        self._lock.release()

    def _require_lock(self):
        if not self._lock._held_here():
            raise RuntimeError(f"condition '{self.name}' used without holding its lock '{self._lock._seg.name}'")

    def _free_slot(self, slot, owner):
        self._seg.xchg32(slot + _C_TICKET, _TICKET_WAITING)  # first: a freshly claimed slot must read "waiting"
        self._seg.cas64(slot, owner, 0)

    def _claim(self):
        seg = self._seg
        for pass_ in range(3):
            for i in range(_C_NSLOTS):
                slot = _HDR + _C_SLOTS + i * _C_SLOT
                owner = seg.load64(slot)
                if pass_ != 1 and owner == 0 and seg.cas64(slot, 0, _MY_IDENTITY) == 0:
                    return slot
                if pass_ == 1 and owner not in (0, _ME) and not _alive_word(owner):
                    self._free_slot(slot, owner)
        raise ShmIpcError(f"condition '{self.name}' has {_C_NSLOTS} waiters already, its limit")

    def wait(self, timeout=None):
        """Releases the lock, waits until notified or the timeout (seconds) passes, takes the lock back. False on timeout.
        LockAbandonedError (the lock held) when the lock's holder died meanwhile."""
        self._require_lock()
        seg, lk = self._seg, self._lock
        slot = self._claim()
        depth = lk._seg.load32(lk._b + _L_DEPTH) if lk.recursive else 1
        if lk.recursive:
            lk._seg.xchg32(lk._b + _L_DEPTH, 1)
        lk.release()
        try:
            self._sig.wait(lambda: seg.load32(slot + _C_TICKET) == _TICKET_NOTIFIED, lambda: None, _deadline(timeout),
                           self.spin, self.slice)
        finally:
            notified = seg.cas32(slot + _C_TICKET, _TICKET_WAITING, _TICKET_WITHDRAWN) == _TICKET_NOTIFIED
            seg.xchg32(slot + _C_TICKET, _TICKET_WAITING)
            seg.store64(slot, 0)
            try:
                lk.acquire()
            finally:
                if lk.recursive:
                    lk._seg.xchg32(lk._b + _L_DEPTH, depth)
        return notified

    def wait_for(self, predicate, timeout=None):
        """Waits until predicate() (called with the lock held) is true or the timeout passes; returns its last value."""
        deadline = _deadline(timeout)
        result = predicate()
        while not result:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self.wait(left)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wakes up to n waiters that were waiting when it was called. Call with the lock held."""
        self._require_lock()
        seg, notified = self._seg, 0
        for i in range(_C_NSLOTS):
            if notified >= n:
                break
            slot = _HDR + _C_SLOTS + i * _C_SLOT
            owner = seg.load64(slot)
            if owner == 0 or seg.load32(slot + _C_TICKET) != _TICKET_WAITING:
                continue
            if owner != _ME and not _alive_word(owner):  # a dead waiter never takes a live one's notification
                self._free_slot(slot, owner)
                continue
            if seg.cas32(slot + _C_TICKET, _TICKET_WAITING, _TICKET_NOTIFIED) == _TICKET_WAITING:
                notified += 1
        if notified:
            self._sig.notify()

    def notify_all(self):
        self.notify(_C_NSLOTS)

    def close(self):
        """Closes this handle (not the lock's)."""
        self._seg.close(unlink=self._seg.creator)


def _alive_word(owner):
    word = owner & _M64
    return _is_identity_word(word) and _identity_alive(word)


# ------------------------------------------------------------------------------------------- §7.7 Barrier

_B_CONTROL, _B_PHASE, _B_ARRIVED, _B_BROKEN, _B_SLEEPERS, _B_PARTIES, _B_EPOCH = 1152, 0, 8, 12, 16, 20, 24
_B_SLOTS, _B_SLOT, _B_NSLOTS, _B_ARRIVED_PHASE = 128, 16, 64, 8


class BrokenBarrierError(threading.BrokenBarrierError):
    """The barrier is or became broken (threading.BrokenBarrierError). .reason: "timeout" (this waiter's time ran out,
    which broke it for all), "dead" (a participant died before arriving), "reset", or "broken"."""

    def __init__(self, name, reason, detail):
        super().__init__(f"barrier '{name}' is broken: {detail}")
        self.reason = reason


class Barrier:
    """A ShmIpc Barrier (§7.7), like multiprocessing.Barrier: wait() returns when `parties` calls have arrived. Every open
    handle is a participant (at most 64); one whose process dies before arriving breaks the barrier for the waiters
    within one sleep slice. wait() returns the phase that completed (threading.Barrier returns an arrival index)."""

    def __init__(self, seg):
        self._seg, self.name = seg, seg.name
        self.parties = _I32.unpack_from(seg.mm, _HDR + _B_PARTIES)[0]
        self._sig = _Signal(seg, _HDR + _B_SLEEPERS, seg.sems[0])
        self.spin, self.slice = 50e-6, 0.1
        self._slot = self._claim()

    @classmethod
    def open(cls, name):
        seg = _Segment(name, _KIND_BARRIER)
        if not _control_shape(seg, _B_CONTROL, 0, 1):
            raise _refuse(seg, "barrier", f"control block, data or semaphores out of shape (a barrier has {_B_CONTROL} bytes, 0, 1)")
        parties = _I32.unpack_from(seg.mm, _HDR + _B_PARTIES)[0]
        if not 1 <= parties <= _B_NSLOTS:
            raise _refuse(seg, "barrier", f"participant count {parties} is not between 1 and {_B_NSLOTS}")
        try:
            return cls(seg)
        except BaseException:
            seg.close(unlink=False)
            raise

    @classmethod
    def create(cls, name, parties):
        if not 1 <= parties <= _B_NSLOTS:
            raise ValueError(f"parties must be 1 .. {_B_NSLOTS}")
        seg = _Segment(name, _KIND_BARRIER, create=(_B_CONTROL, 0, 1))
        struct.pack_into("<i", seg.mm, _HDR + _B_PARTIES, parties)
        barrier = cls(seg)  # the fresh table is empty: this handle takes slot 0 before anyone can look
        seg.publish()
        return barrier

    def _claim(self):
        seg = self._seg
        for _ in range(2):
            for i in range(_B_NSLOTS):
                slot = _HDR + _B_SLOTS + i * _B_SLOT
                if seg.cas64(slot, 0, _MY_IDENTITY) == 0:
                    seg.store64(slot + _B_ARRIVED_PHASE, 0)
                    return slot
            for i in range(_B_NSLOTS):  # full: dead processes can no longer arrive; free their slots
                slot = _HDR + _B_SLOTS + i * _B_SLOT
                owner = seg.load64(slot)
                if owner != _ME and not _alive_word(owner):
                    seg.cas64(slot, owner, 0)
        raise ShmIpcError(f"barrier '{self.name}' has {_B_NSLOTS} open handles already, its limit")

    @property
    def broken(self):
        return self._seg.load32(_HDR + _B_BROKEN) != 0

    @property
    def phase(self):
        """Completed phases."""
        return self._seg.load64(_HDR + _B_PHASE)

    def abort(self):
        """Breaks the barrier: waiters raise BrokenBarrierError."""
        self._seg.xchg32(_HDR + _B_BROKEN, 1)
        self._sig.notify()

    def reset(self):
        """Mends it: no arrivals, not broken. Threads waiting now raise BrokenBarrierError."""
        seg = self._seg
        seg.xchg32(_HDR + _B_ARRIVED, 0)
        seg.xchg32(_HDR + _B_BROKEN, 0)
        _fadd64(seg, _HDR + _B_EPOCH, 1)
        self._sig.notify()

    def wait(self, timeout=None):
        """Arrives and waits for the others; returns the phase that completed. BrokenBarrierError if it is or becomes
        broken first, or when the timeout (seconds) passes (which breaks it for everyone, as in Python)."""
        seg, c = self._seg, _HDR
        epoch, phase = seg.load64(c + _B_EPOCH), seg.load64(c + _B_PHASE)
        if seg.load32(c + _B_BROKEN):
            raise BrokenBarrierError(self.name, "broken", "it broke earlier and was not reset")
        seg.store64(self._slot + _B_ARRIVED_PHASE, phase + 1)
        if seg.fadd32(c + _B_ARRIVED, 1) + 1 >= self.parties:
            seg.xchg32(c + _B_ARRIVED, 0)
            _fadd64(seg, c + _B_PHASE, 1)  # the §4 full fence
            self._sig.notify()
            return phase
        dead = []

        def ready():
            return seg.load64(c + _B_PHASE) != phase or seg.load32(c + _B_BROKEN) != 0 or seg.load64(c + _B_EPOCH) != epoch

        def before_sleep():
            for i in range(_B_NSLOTS):
                slot = c + _B_SLOTS + i * _B_SLOT
                owner = seg.load64(slot)
                if owner in (0, _ME) or seg.load64(slot + _B_ARRIVED_PHASE) == phase + 1 or _alive_word(owner):
                    continue
                seg.cas64(slot, owner, 0)
                dead.append(((owner & _M64) & 0xFFFFFFFF) >> 5)
                self.abort()
                return

        ended = self._sig.wait(ready, before_sleep, _deadline(timeout), self.spin, self.slice)
        if seg.load64(c + _B_PHASE) != phase:
            return phase
        if not ended:
            self.abort()
            raise BrokenBarrierError(self.name, "timeout", f"this waiter's {timeout} s ran out (which broke it for all)")
        if dead:
            raise BrokenBarrierError(self.name, "dead", f"participant pid {dead[0]} died before arriving")
        if seg.load64(c + _B_EPOCH) != epoch:
            raise BrokenBarrierError(self.name, "reset", "it was reset while this thread waited")
        raise BrokenBarrierError(self.name, "broken", "another waiter's time ran out, a participant died, or it was aborted")

    def close(self):
        """Closes this handle: it stops being a participant."""
        if self._seg.mm is not None:
            self._seg.cas64(self._slot, _MY_IDENTITY, 0)
        self._seg.close(unlink=self._seg.creator)


def atomics_source():
    """Where the read-modify-write instructions come from: 'libatomic' or 'x86-64 thunks'."""
    return _atomics.source
