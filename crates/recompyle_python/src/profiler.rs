//! The profiler: per call site a flat row (calls, inclusive time, longest call, raised) and
//! per thread a calling-context tree ([`crate::call_tree`]), optionally a timeline.
//!
//! Times are kept in clock ticks in one GIL-guarded [`Profile`]; snapshots hand the raw
//! counts to Python (`recompyle.profiler`), which converts them and keeps per-`Profiler`
//! baselines, so profilers nest and overlap. The native recording runs while at least one
//! profiler is started (a count); the tree is kept while at least one of them wants it.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::ptr::null_mut;
use std::sync::atomic::Ordering;

use pyo3::ffi;
use pyo3::prelude::*;

use crate::call_tree::{Ended, Frame, Kind, Link, Mark, NodeId, Stack, Totals, Tree, Windows};
use crate::clock;
use crate::gil::GilCell;
use crate::id_hash::IdHasher;
use crate::listeners::{ACTIVE, PROFILING, TREE};

pub(crate) mod awaited;

/// Add one call to a site's flat row: every call of the site, inclusive times (a
/// recursive call's time is in its own row and again in its caller's, as each call's
/// inclusive time is added). `self_ticks` is unused in flat rows.
#[inline(always)]
fn add(p: &mut Profile, dense: u32, ticks: u64, raised: bool) {
    let Profile {
        flat,
        flat_marks,
        windows,
        ..
    } = p;
    let (Some(s), Some(mark)) = (
        flat.get_mut(dense as usize),
        flat_marks.get_mut(dense as usize),
    ) else {
        return;
    };
    windows.touch(Kind::Sites, dense, s, mark);
    s.calls += 1;
    s.ticks += ticks;
    if ticks > s.max_ticks {
        s.max_ticks = ticks;
    }
    s.raised += u64::from(raised);
}

/// A root (a thread, or an asyncio task): its node and who it is.
struct Root {
    node: NodeId,
    thread_id: u64,
    /// The thread's (or task's) name when it was first seen, if it could be had then.
    name: Option<String>,
    /// An asyncio task's root rather than a thread's.
    task: bool,
}

/// A task seen by the profiler: a weak reference to it (its address alone could be reused
/// by a later task), the context it ran in, and its stack.
///
/// The stack is freed once no call can reach it: the task is gone and nothing but the
/// profile holds the context any more. Calls find their stack by the thread's current
/// context (`MINE` keeps a strong reference to the one it caches, and a call in progress
/// runs in its context, which the thread state holds), so while anyone else holds the
/// context (a task sharing it through `context=`, a cache, a call) the stack stays. Sweeps
/// run when the stacks kept have doubled and when the last profiler stops, so a finished
/// task's context is not held past the profile.
struct TaskStack {
    /// Owned: a weak reference to the task.
    weak: Py<PyAny>,
    /// Owned: the `contextvars` context current when the task was first seen.
    context: Py<PyAny>,
    /// Its own allocation, so its address stays while the map moves the entry.
    stack: Box<Stack>,
}

/// One recorded call for the timeline.
#[derive(Clone, Copy)]
struct Event {
    node: NodeId,
    raised: bool,
    start: u64,
    end: u64,
}

#[derive(Default)]
struct Timeline {
    /// Profilers recording a timeline; events are kept while any is, and until the next
    /// first one starts.
    users: u32,
    cap: usize,
    min_ticks: u64,
    events: Vec<Event>,
    dropped: u64,
    /// Bumped when the buffer is emptied, so a profiler knows its window is gone.
    generation: u64,
}

#[derive(Default)]
struct Profile {
    /// Flat rows, by dense site index.
    flat: Vec<Totals>,
    flat_marks: Vec<Mark>,
    /// The profilers' windows over `flat` and `tree`.
    windows: Windows,
    /// Dense index → site id.
    site_ids: Vec<u64>,
    /// Dense index → the site is the operand of `await`.
    awaited: Vec<bool>,
    index: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    tree: Tree,
    roots: Vec<Root>,
    /// Each thread's stack, boxed: the pointer a thread caches stays valid while the vector
    /// grows, until a reset.
    #[allow(clippy::vec_box)]
    stacks: Vec<Box<Stack>>,
    /// Task address → its stack.
    tasks: HashMap<usize, TaskStack, BuildHasherDefault<IdHasher>>,
    /// Stacks of dead tasks whose address a newer task took, not yet freed.
    retired: Vec<TaskStack>,
    /// Stacks kept (`tasks` and `retired`) at which the next sweep frees those no call can
    /// reach.
    sweep_at: usize,
    /// (thread id, the task's coroutine) → the aggregate root its tasks share.
    task_roots: HashMap<(u64, String), NodeId>,
    /// Tasks given a root of their own (while a timeline with room records), at most
    /// [`TASK_LANES`] per epoch.
    own_task_roots: usize,
    timeline: Timeline,
}

static PROFILE: GilCell<Option<Profile>> = GilCell::new(None);

/// At most this many tasks (per reset) get a root of their own, their timeline lane, while a
/// timeline records: a lane costs a root and its own copy of the task's paths, which a
/// server's endless tasks must not multiply.
const TASK_LANES: usize = 10_000;

/// Bumped by every reset: stacks and cached pointers of an older epoch are stale.
static EPOCH: GilCell<Cell<u64>> = GilCell::new(Cell::new(1));

/// Profilers started and not stopped, and how many of them want the tree.
static USERS: GilCell<Cell<(u32, u32)>> = GilCell::new(Cell::new((0, 0)));

thread_local! {
    /// The stack calls go to on this thread: `(epoch, context, stack)`, the stack borrowed
    /// from [`Profile::stacks`] (valid while the epoch matches), chosen while `context` (a
    /// strong reference, so its address is not reused while it is cached) was the thread's
    /// current `contextvars` context.
    static MINE: Cell<(u64, *mut ffi::PyObject, *mut Stack)> =
        const { Cell::new((0, null_mut(), null_mut())) };
    /// This thread's own stack (its root) in the current epoch: `(epoch, stack)`.
    static THREAD: Cell<(u64, *mut Stack)> = const { Cell::new((0, null_mut())) };
    /// Set while the current task is being looked up (no reported call can nest there).
    static LOOKING: Cell<bool> = const { Cell::new(false) };
}

/// The stack the last reported call went to, and whose it was: [`MINE`] of the thread
/// `(ts, id)` (the state's address can be reused by a later thread, its id cannot) while
/// its context was `ctx`. One global read instead of a thread-local one, which from a
/// dynamically loaded library is a call into the loader on every reported call. `ctx` is
/// borrowed from that thread's [`MINE`], which holds it (and is only replaced where this is
/// too), so its address is not reused while it is here. Set only to a stack of the current
/// epoch (never NULL) and emptied ([`Last::NONE`], whose NULL `ts` matches no thread) by the
/// reset that ends the epoch, so a match needs no epoch compare.
#[derive(Clone, Copy)]
struct Last {
    ts: *mut ffi::PyThreadState,
    id: i64,
    ctx: *mut ffi::PyObject,
    stack: *mut Stack,
}

impl Last {
    const NONE: Last = Last {
        ts: null_mut(),
        id: 0,
        ctx: null_mut(),
        stack: null_mut(),
    };

    /// Whether `stack` is the one for the thread `ts` (not NULL) under `ctx`.
    #[inline(always)]
    fn stack_if(&self, ts: *mut ffi::PyThreadState, ctx: *mut ffi::PyObject) -> bool {
        self.ts == ts
            && self.ctx == ctx
            // SAFETY: the GIL is held and `ts` is the running thread's state.
            && unsafe { ffi::PyThreadState_GetID(ts) } == self.id
    }
}

// SAFETY: only touched with the GIL held (GilCell); the pointers are compared, and `stack`
// dereferenced only in its epoch, as MINE's.
unsafe impl Send for Last {}

static LAST: GilCell<Cell<Last>> = GilCell::new(Cell::new(Last::NONE));

/// Offset of `PyThreadState.context` (the current `contextvars` context) for the running
/// interpreter, from CPython's headers; 0 once [`init_tasks`] found it does not hold (then
/// every call goes to its thread's stack).
static CONTEXT_OFFSET: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(if cfg!(Py_GIL_DISABLED) {
        0
    } else if cfg!(Py_3_15) {
        232
    } else if cfg!(Py_3_12) {
        208
    } else if cfg!(Py_3_11) {
        224
    } else {
        240
    });

/// The current `contextvars` context of the thread whose state is `ts` (NULL before any
/// was entered or made).
///
/// # Safety
/// The GIL is held and `ts` is the running thread's state.
#[inline(always)]
unsafe fn context_of(ts: *mut ffi::PyThreadState) -> *mut ffi::PyObject {
    let offset = CONTEXT_OFFSET.load(Ordering::Relaxed);
    if offset == 0 {
        return null_mut();
    }
    // SAFETY: the offset was checked against the running interpreter by `init_tasks`.
    unsafe { *ts.cast::<u8>().add(offset).cast::<*mut ffi::PyObject>() }
}

/// Check the header offset of the thread state's context against the interpreter: enter a
/// new context and see it there, exit and see the previous one. A mismatch turns task
/// roots off rather than reading a wrong field.
fn init_tasks(py: Python<'_>) {
    let _ = py;
    let offset = CONTEXT_OFFSET.load(Ordering::Relaxed);
    if offset == 0 {
        return;
    }
    // SAFETY: the GIL is held; the offset is inside `PyThreadState` for every version the
    // table above names.
    let ok = unsafe {
        let ts = ffi::PyThreadState_Get().cast::<u8>();
        let slot = ts.add(offset).cast::<*mut ffi::PyObject>();
        let before = *slot;
        let ctx = ffi::PyContext_New();
        if ctx.is_null() {
            ffi::PyErr_Clear();
            false
        } else {
            let entered = ffi::PyContext_Enter(ctx) == 0;
            let seen = entered && *slot == ctx;
            let exited = entered && ffi::PyContext_Exit(ctx) == 0;
            if !entered || !exited {
                ffi::PyErr_Clear();
            }
            let back = exited && *slot == before;
            ffi::Py_DECREF(ctx);
            seen && back
        }
    };
    if !ok {
        CONTEXT_OFFSET.store(0, Ordering::Relaxed);
    }
}

/// The profile, made on first use. Inlined: every reported call asks for it twice, and the
/// made-already case is one compare.
#[inline(always)]
fn profile(py: Python<'_>) -> &mut Profile {
    match PROFILE.get_mut(py) {
        Some(p) => p,
        none => new_profile(none),
    }
}

/// [`profile`] on the per-call path, where one was made already: no check.
///
/// # Safety
/// [`profile`] was called before in this process (every stack, site index and entry is
/// made after it); the profile, once made, is only ever replaced, never removed.
#[inline(always)]
unsafe fn profile_made(py: Python<'_>) -> &mut Profile {
    debug_assert!(PROFILE.get(py).is_some());
    // SAFETY: as this function's contract.
    unsafe { PROFILE.get_mut(py).as_mut().unwrap_unchecked() }
}

#[cold]
#[inline(never)]
fn new_profile(slot: &mut Option<Profile>) -> &mut Profile {
    slot.insert(Profile::default())
}

/// Site-id objects (the int constants in the rewritten code) to dense site indices,
/// direct-mapped by address: a hit costs one compare instead of converting the int and
/// hashing it. Each entry holds a reference to its int, so the address cannot be reused by
/// another object while cached.
const CACHE_SLOTS: usize = 1024;

/// Owned: each entry's site-id object holds a reference (released when replaced). A fixed
/// array (NULL keys when empty): a lookup is an index and a compare, no length check.
struct Cache([(*mut ffi::PyObject, u32); CACHE_SLOTS]);
// SAFETY: only touched with the GIL held (GilCell).
unsafe impl Send for Cache {}

static CACHE: GilCell<Cache> = GilCell::new(Cache([(null_mut(), 0); CACHE_SLOTS]));

/// The dense index of the site whose id object is `site_obj`; `None` if it is not a site id.
///
/// # Safety
/// `site_obj` must be a live object and the GIL held.
#[inline(always)]
unsafe fn dense_of(py: Python<'_>, site_obj: *mut ffi::PyObject) -> Option<u32> {
    let slot = (site_obj as usize >> 4) % CACHE_SLOTS;
    let (key, dense) = CACHE.get(py).0[slot];
    if key == site_obj {
        return Some(dense);
    }
    // SAFETY: as this function's contract.
    unsafe { dense_miss(py, site_obj, slot) }
}

/// # Safety
/// `site_obj` must be a live object and the GIL held.
#[cold]
#[inline(never)]
unsafe fn dense_miss(py: Python<'_>, site_obj: *mut ffi::PyObject, slot: usize) -> Option<u32> {
    // SAFETY: the GIL is held and `site_obj` is live.
    let Some(site) = (unsafe { crate::sites::id_of(site_obj) }) else {
        // Not a site id (someone called the builtin by hand): nothing to record.
        // SAFETY: the GIL is held.
        unsafe { ffi::PyErr_Clear() };
        return None;
    };
    let dense = dense_of_id(py, site);
    let cache = &mut CACHE.get_mut(py).0;
    // SAFETY: the GIL is held; the cache takes a reference to `site_obj` (live) and
    // releases the one it held to the entry it replaces.
    unsafe { ffi::Py_INCREF(site_obj) };
    let (old, _) = std::mem::replace(&mut cache[slot], (site_obj, dense));
    if !old.is_null() {
        // SAFETY: as above.
        unsafe { ffi::Py_DECREF(old) };
    }
    Some(dense)
}

fn dense_of_id(py: Python<'_>, site: u64) -> u32 {
    let p = profile(py);
    if let Some(&d) = p.index.get(&site) {
        return d;
    }
    let d = p.flat.len() as u32;
    p.flat.push(Totals::default());
    p.flat_marks.push(Mark::default());
    p.site_ids.push(site);
    p.awaited.push(
        crate::sites::lookup(site).is_some_and(|(module, index)| module.sites[index].awaited),
    );
    p.index.insert(site, d);
    d
}

/// Record one call of the site whose id is `site` in the flat table only.
pub fn record(py: Python<'_>, site: u64, ticks: u64, raised: bool) {
    let d = dense_of_id(py, site);
    add(profile(py), d, ticks, raised);
}

/// End a flat-only call of the site whose id object is `site_obj` (an exact int), begun at
/// tick `t0`, which returned `res` (NULL if it raised); returns what the caller gets: `res`,
/// or for a call at an awaited site that returned something awaitable, an
/// [`awaited::Awaited`] that records the call when the awaited result is ready (as the tree
/// does). A call at any other site costs one more look at its dense row.
///
/// # Safety
/// `site_obj` must be a live int object and the GIL held; `res` is a new reference or NULL
/// (then with the error set).
#[inline(always)]
pub unsafe fn record_obj_result(
    py: Python<'_>,
    site_obj: *mut ffi::PyObject,
    t0: u64,
    res: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let end = clock::ticks();
    // SAFETY: as this function's contract.
    if let Some(d) = unsafe { dense_of(py, site_obj) } {
        if let Some(p) = PROFILE.get_mut(py) {
            if p.awaited.get(d as usize) == Some(&true) && !res.is_null() {
                // SAFETY: the GIL is held and `res` is a new reference (taken over).
                return unsafe { flat_awaited(py, d, t0, end, res) };
            }
            add(p, d, end.wrapping_sub(t0), res.is_null());
        }
    }
    res
}

/// A flat-only call at an awaited site returned `res`: if it is awaitable, its record waits
/// for the awaited result; otherwise it is recorded now, ended at `end`.
///
/// # Safety
/// The GIL is held, no error is set, and `res` is a new reference, taken over.
#[cold]
#[inline(never)]
unsafe fn flat_awaited(
    py: Python<'_>,
    dense: u32,
    t0: u64,
    end: u64,
    res: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: `res` is live.
    if unsafe { awaited::awaitable(res) } {
        let pending = pend_flat_dense(py, dense, t0);
        // SAFETY: the GIL is held, no error is set, `res` is awaitable and handed over.
        return unsafe { awaited::wrap(py, res, Some(pending), None) };
    }
    add(profile(py), dense, end.wrapping_sub(t0), false);
    res
}

/// The record of a flat-only call at the site `site` (a site id), begun at tick `t0`, that
/// returned an awaitable at an awaited site: it ends when the awaited result is ready.
pub fn pend_flat(py: Python<'_>, site: u64, t0: u64) -> Pending {
    let dense = dense_of_id(py, site);
    pend_flat_dense(py, dense, t0)
}

fn pend_flat_dense(py: Python<'_>, dense: u32, t0: u64) -> Pending {
    Pending {
        node: FLAT_ONLY,
        site: dense,
        parent: FLAT_ONLY,
        start: t0,
        child_ticks: 0,
        recursive: false,
        epoch: EPOCH.get(py).get(),
        callee: None,
    }
}

/// [`Pending::node`] of a flat-only record (no tree node).
const FLAT_ONLY: NodeId = NodeId::MAX;

/// Whether the site `site` (a site id) is the operand of `await`, from the profile's own
/// column (the flat-only handler path asks it only for calls that returned an awaitable).
pub fn site_awaited(py: Python<'_>, site: u64) -> bool {
    let dense = dense_of_id(py, site);
    profile(py).awaited.get(dense as usize) == Some(&true)
}

/// A call entered in the tree, to be ended by [`leave`].
pub struct Entry {
    /// Borrowed from [`Profile::stacks`]; only dereferenced while `epoch` is current.
    stack: *mut Stack,
    epoch: u64,
    depth: usize,
    /// The site is the operand of `await`.
    awaited: bool,
    /// Borrowed: the object called (NULL if unknown), which the selector's caller holds
    /// until the call returns; only the slow-call hook reads it (`code.function.name`).
    callee: *mut ffi::PyObject,
}

/// The stack calls go to now: the running asyncio task's, else this thread's, registering
/// the task or thread on first use in this epoch. While the thread's `contextvars` context
/// stays the one the stack was chosen under, that is one compare (a task runs each step in
/// its own context).
#[inline(always)]
fn my_stack(py: Python<'_>, epoch: u64) -> *mut Stack {
    // SAFETY: the GIL is held, so the thread has a state, and `ts` is it.
    let (ts, now) = unsafe {
        let ts = ffi::PyThreadState_Get();
        (ts, context_of(ts))
    };
    let last = LAST.get(py).get();
    if last.stack_if(ts, now) {
        return last.stack;
    }
    mine(py, ts, epoch, now)
}

/// [`my_stack`] when the last reported call was made by another thread (or under another
/// context): this thread's own choice ([`MINE`]), made again if its context changed.
#[cold]
#[inline(never)]
fn mine(
    py: Python<'_>,
    ts: *mut ffi::PyThreadState,
    epoch: u64,
    now: *mut ffi::PyObject,
) -> *mut Stack {
    let (e, ctx, stack) = MINE.with(Cell::get);
    let stack = if e == epoch && ctx == now && !stack.is_null() {
        stack
    } else {
        switch_stack(py, epoch, now)
    };
    if !stack.is_null() {
        LAST.get(py).set(Last {
            ts,
            // SAFETY: the GIL is held and `ts` is the running thread's state.
            id: unsafe { ffi::PyThreadState_GetID(ts) },
            ctx: now,
            stack,
        });
    }
    stack
}

#[cold]
#[inline(never)]
fn switch_stack(py: Python<'_>, epoch: u64, ctx: *mut ffi::PyObject) -> *mut Stack {
    // This may run while the call's exception is set (an awaited call ending in error):
    // the lookups must neither see nor lose it.
    let pending = PyErr::take(py);
    let task = if ctx.is_null() || LOOKING.with(Cell::get) {
        None
    } else {
        LOOKING.with(|l| l.set(true));
        let task = current_task(py);
        LOOKING.with(|l| l.set(false));
        task
    };
    let stack = match task {
        Some(task) => task_stack(py, epoch, &task, ctx),
        None => thread_stack(py, epoch),
    };
    if let Some(err) = pending {
        err.restore(py);
    }
    if !stack.is_null() {
        // SAFETY: the GIL is held; `ctx` is the live current context (or NULL); the old
        // one is the reference this thread kept.
        unsafe {
            ffi::Py_XINCREF(ctx);
            let (_, old, _) = MINE.with(|m| m.replace((epoch, ctx, stack)));
            ffi::Py_XDECREF(old);
        }
    }
    stack
}

/// This thread's own stack, registering the thread on first use in this epoch.
fn thread_stack(py: Python<'_>, epoch: u64) -> *mut Stack {
    let (e, stack) = THREAD.with(Cell::get);
    if e == epoch && !stack.is_null() {
        return stack;
    }
    // SAFETY: the GIL is held.
    let thread_id = unsafe { ffi::PyThread_get_thread_ident() } as u64;
    let name = thread_name(py, thread_id);
    let p = profile(py);
    let node = add_root(p, thread_id, name, false);
    let mut stack = Box::new(Stack::new(node));
    let ptr: *mut Stack = &mut *stack;
    p.stacks.push(stack);
    THREAD.with(|m| m.set((epoch, ptr)));
    ptr
}

/// A new root of the tree (a thread, a task, or the tasks of one coroutine); its node.
fn add_root(p: &mut Profile, thread_id: u64, name: Option<String>, task: bool) -> NodeId {
    let root = p.roots.len() as u32;
    let node = p.tree.add_root(root);
    p.roots.push(Root {
        node,
        thread_id,
        name,
        task,
    });
    node
}

/// asyncio's running task on this thread, if a loop runs here; asked of the C accelerator
/// `_asyncio` (no Python code runs), only when the thread's context changed.
fn current_task<'py>(py: Python<'py>) -> Option<Bound<'py, PyAny>> {
    let modules = py.import("sys").ok()?.getattr("modules").ok()?;
    let asyncio = modules.get_item("_asyncio").ok()?;
    let loop_ = asyncio.call_method0("_get_running_loop").ok()?;
    if loop_.is_none() {
        return None;
    }
    // `current_task` is native from 3.12; before, the accelerator's table of running tasks.
    let task = match asyncio.getattr("current_task") {
        Ok(current) => current.call1((loop_,)).ok()?,
        Err(_) => asyncio
            .getattr("_current_tasks")
            .ok()?
            .call_method1("get", (loop_,))
            .ok()?,
    };
    (!task.is_none()).then_some(task)
}

/// The object `weak` refers to (NULL if dead), its address only.
///
/// # Safety
/// The GIL is held and `weak` is a weak reference.
unsafe fn weak_target(weak: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: the GIL is held and `weak` is a weak reference; the strong reference 3.13+
    // hands out is released at once (only the address is compared).
    #[cfg(Py_3_13)]
    unsafe {
        let mut obj = null_mut();
        if ffi::PyWeakref_GetRef(weak, &mut obj) < 0 {
            ffi::PyErr_Clear();
        }
        ffi::Py_XDECREF(obj);
        obj
    }
    // SAFETY: the GIL is held and `weak` is a weak reference (a borrowed result).
    #[cfg(not(Py_3_13))]
    unsafe {
        let obj = ffi::PyWeakref_GetObject(weak);
        if obj.is_null() {
            ffi::PyErr_Clear();
            return null_mut();
        }
        if obj == ffi::Py_None() {
            null_mut()
        } else {
            obj
        }
    }
}

/// The stack of `task`, first seen while `ctx` (live, not NULL) was the thread's context:
/// a stack of its own, whose root is the aggregate root of the task's coroutine on this
/// thread (or, while a timeline with room records, a root of the task's own, named by the
/// task's name, so that its events have a lane of their own).
fn task_stack(
    py: Python<'_>,
    epoch: u64,
    task: &Bound<'_, PyAny>,
    ctx: *mut ffi::PyObject,
) -> *mut Stack {
    let key = task.as_ptr() as usize;
    if let Some(t) = profile(py).tasks.get_mut(&key) {
        // SAFETY: the GIL is held and `weak` is a weak reference.
        let alive = unsafe { weak_target(t.weak.as_ptr()) } == task.as_ptr();
        if alive {
            return &mut *t.stack;
        }
    }
    // SAFETY: the GIL is held; `task` is live.
    let weak = unsafe { ffi::PyWeakref_NewRef(task.as_ptr(), null_mut()) };
    if weak.is_null() {
        PyErr::take(py);
        return thread_stack(py, epoch);
    }
    // SAFETY: a new reference.
    let weak = unsafe { Bound::from_owned_ptr(py, weak) }.unbind();
    // SAFETY: `ctx` is the thread's live current context.
    let context = unsafe { Bound::from_borrowed_ptr(py, ctx) }.unbind();
    let name = task
        .call_method0("get_name")
        .ok()
        .and_then(|n| n.extract::<String>().ok());
    let coroutine = coroutine_of(task);
    // SAFETY: the GIL is held.
    let thread_id = unsafe { ffi::PyThread_get_thread_ident() } as u64;
    // Freed stacks are dropped once the profile is no longer borrowed: releasing a context
    // may run any code (its values' finalizers), reported calls included.
    let mut freed: Vec<TaskStack> = Vec::new();
    let p = profile(py);
    if p.tasks.len() + p.retired.len() >= p.sweep_at {
        sweep(p, &mut freed);
        p.sweep_at = (2 * (p.tasks.len() + p.retired.len())).max(64);
    }
    let t = &p.timeline;
    let own = t.users != 0 && t.events.len() < t.cap && p.own_task_roots < TASK_LANES.min(t.cap);
    let node = if own {
        p.own_task_roots += 1;
        add_root(p, thread_id, name, true)
    } else {
        let (key, label) = match coroutine {
            Some(c) => c,
            None => name_pattern(name.as_deref().unwrap_or("")),
        };
        match p.task_roots.get(&(thread_id, key.clone())) {
            Some(&node) => node,
            None => {
                let node = add_root(p, thread_id, Some(label), true);
                p.task_roots.insert((thread_id, key), node);
                node
            }
        }
    };
    // A root node's `calls` count the tasks that ran under it (saved for the windows as
    // any count is).
    if let Some(n) = p.tree.nodes.get_mut(node as usize) {
        p.windows
            .touch(Kind::Nodes, node, &mut n.totals, &mut n.mark);
        n.totals.calls += 1;
    }
    let mut stack = Box::new(Stack::new(node));
    let ptr: *mut Stack = &mut *stack;
    let entry = TaskStack {
        weak,
        context,
        stack,
    };
    if let Some(old) = p.tasks.insert(key, entry) {
        p.retired.push(old);
    }
    drop(freed);
    ptr
}

/// What the aggregate root of `task`'s tasks is keyed and named by: its coroutine's code
/// (file, first line, qualified name) and qualified name; `None` if it has none to ask.
fn coroutine_of(task: &Bound<'_, PyAny>) -> Option<(String, String)> {
    let py = task.py();
    let coro = task.call_method0(pyo3::intern!(py, "get_coro")).ok()?;
    if coro.is_none() {
        return None;
    }
    let code = coro
        .getattr(pyo3::intern!(py, "cr_code"))
        .or_else(|_| coro.getattr(pyo3::intern!(py, "gi_code")))
        .ok()?;
    // The coroutine's `__qualname__` is its function's (`co_qualname` is 3.11+ only).
    let qualname: String = coro
        .getattr(pyo3::intern!(py, "__qualname__"))
        .or_else(|_| code.getattr(pyo3::intern!(py, "co_name")))
        .ok()?
        .extract()
        .ok()?;
    let file: String = code
        .getattr(pyo3::intern!(py, "co_filename"))
        .ok()?
        .extract()
        .ok()?;
    let line: u32 = code
        .getattr(pyo3::intern!(py, "co_firstlineno"))
        .ok()?
        .extract()
        .ok()?;
    Some((format!("{file}:{line}:{qualname}"), qualname))
}

/// Key and name of the aggregate root of a task with no coroutine to ask: its name with a
/// trailing number (asyncio's `Task-17`) replaced by `*`.
fn name_pattern(name: &str) -> (String, String) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let label = if stem.len() < name.len() {
        format!("{stem}*")
    } else {
        name.to_owned()
    };
    (format!("\0name:{label}"), label)
}

/// Move into `freed` every task stack no call can reach any more: its task is gone and the
/// profile's references are the only ones left to its context (no cache, no running call,
/// no other task holds it).
fn sweep(p: &mut Profile, freed: &mut Vec<TaskStack>) {
    let mut ours: HashMap<usize, isize, BuildHasherDefault<IdHasher>> = HashMap::default();
    for t in p.tasks.values().chain(&p.retired) {
        *ours.entry(t.context.as_ptr() as usize).or_default() += 1;
    }
    let unreachable = |t: &TaskStack| {
        let ctx = t.context.as_ptr();
        // SAFETY: the GIL is held (the profile is only reached with it); `weak` is a weak
        // reference and `ctx` a live object the profile holds.
        unsafe {
            weak_target(t.weak.as_ptr()).is_null()
                && ffi::Py_REFCNT(ctx) == ours.get(&(ctx as usize)).copied().unwrap_or(0)
        }
    };
    let dead: Vec<usize> = (p.tasks.iter())
        .filter(|(_, t)| unreachable(t))
        .map(|(&k, _)| k)
        .collect();
    let retired = std::mem::take(&mut p.retired);
    let (gone, kept): (Vec<TaskStack>, Vec<TaskStack>) = retired.into_iter().partition(unreachable);
    p.retired = kept;
    freed.extend(gone);
    freed.extend(dead.into_iter().filter_map(|k| p.tasks.remove(&k)));
}

/// The name `threading` has for the thread `ident`, looked up without creating anything
/// (`threading.current_thread()` would make a dummy thread object for foreign threads).
fn thread_name(py: Python<'_>, ident: u64) -> Option<String> {
    let modules = py.import("sys").ok()?.getattr("modules").ok()?;
    let threading = modules.get_item("threading").ok()?;
    let active = threading.getattr("_active").ok()?;
    let thread = active.call_method1("get", (ident,)).ok()?;
    if thread.is_none() {
        return None;
    }
    thread.getattr("name").ok()?.extract().ok()
}

/// Enter a call of `callee` at the site `site_obj` in this thread's tree; `None` if it is
/// not a site.
///
/// # Safety
/// `site_obj` must be a live object and the GIL held; `callee` is live (or NULL) until the
/// call is left.
#[inline(always)]
pub unsafe fn enter(
    py: Python<'_>,
    site_obj: *mut ffi::PyObject,
    callee: *mut ffi::PyObject,
) -> Option<Entry> {
    // SAFETY: as this function's contract.
    let dense = unsafe { dense_of(py, site_obj) }?;
    Some(enter_dense(py, dense, callee))
}

/// [`enter`] for a site id already converted (`callee` as there).
pub fn enter_id(py: Python<'_>, site: u64, callee: *mut ffi::PyObject) -> Entry {
    let dense = dense_of_id(py, site);
    enter_dense(py, dense, callee)
}

/// `dense` is a site index of the current profile (from [`dense_of`] or [`dense_of_id`]).
#[inline(always)]
fn enter_dense(py: Python<'_>, dense: u32, callee: *mut ffi::PyObject) -> Entry {
    let epoch = EPOCH.get(py).get();
    let stack = my_stack(py, epoch);
    // SAFETY: a site index was made, and with it the profile.
    let p = unsafe { profile_made(py) };
    // SAFETY: `stack` belongs to this epoch's `p.stacks`; nothing else borrows it now.
    let stack_ref = unsafe { &mut *stack };
    // SAFETY: this epoch's stack holds its root and only this tree's nodes.
    let link = unsafe { p.tree.child_of_top(stack_ref, dense, dense as usize + 1) };
    debug_assert!((dense as usize) < p.awaited.len());
    // SAFETY: `dense` indexes the profile's site columns, which grow together.
    let awaited = unsafe { *p.awaited.get_unchecked(dense as usize) };
    // SAFETY: the link is this tree's.
    unsafe { p.tree.enter(stack_ref, link, clock::ticks()) };
    Entry {
        stack,
        epoch,
        depth: stack_ref.frames.len(),
        awaited,
        callee,
    }
}

impl Entry {
    /// Whether the call is at a site the rewrite marked as the operand of `await`.
    #[inline(always)]
    pub fn awaited(&self) -> bool {
        self.awaited
    }
}

/// End the call `entry` entered, which returned `res` (NULL if it raised); returns what
/// the caller gets: `res`, or for a call at an awaited site that returned something
/// awaitable, an [`awaited::Awaited`] that ends the call when the result is ready.
///
/// # Safety
/// The GIL must be held; `res` is a new reference or NULL (then with the error set).
#[inline(always)]
pub unsafe fn leave_result(
    py: Python<'_>,
    entry: Entry,
    res: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if entry.awaited && !res.is_null() {
        let Entry {
            stack,
            epoch,
            depth,
            callee,
            ..
        } = entry;
        // SAFETY: as this function's contract, `res` not NULL; the entry's parts.
        return unsafe { leave_awaited_site(py, (stack, epoch, depth, callee), res) };
    }
    leave(py, entry, res.is_null());
    res
}

/// [`leave_result`] for a call at an awaited site that returned: out of line, and given
/// the entry's parts as plain values, so the per-call path keeps no copy of the entry in
/// memory for it.
///
/// # Safety
/// The GIL is held, no error is set, `res` is a new reference (taken over) and the parts
/// are an [`Entry`]'s `(stack, epoch, depth, callee)` whose call has not been left.
#[cold]
#[inline(never)]
unsafe fn leave_awaited_site(
    py: Python<'_>,
    (stack, epoch, depth, callee): (*mut Stack, u64, usize, *mut ffi::PyObject),
    res: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let entry = Entry {
        stack,
        epoch,
        depth,
        awaited: true,
        callee,
    };
    // SAFETY: `res` is live.
    if unsafe { awaited::awaitable(res) } {
        return match pend(py, entry) {
            // SAFETY: the GIL is held, no error is set (the call returned), `res` is
            // awaitable and its reference is handed over.
            Some(pending) => unsafe { awaited::wrap(py, res, Some(pending), None) },
            None => res,
        };
    }
    leave(py, entry, false);
    res
}

/// An awaited call that has returned its awaitable and is not over yet: in the tree, or
/// (`node` [`FLAT_ONLY`]) in the flat table only.
pub struct Pending {
    node: NodeId,
    /// The site's dense index (its flat row), for a flat-only record.
    site: u32,
    /// The node on top when the call was made: its call is charged the wait at the end.
    parent: NodeId,
    start: u64,
    child_ticks: u64,
    recursive: bool,
    epoch: u64,
    /// Owned: the object called, for the slow-call hook when the wait ends.
    callee: Option<Py<PyAny>>,
}

/// The call `entry` entered returned an awaitable at an awaited site: its frame leaves the
/// stack, and its record waits for the awaited result ([`awaited`] ends it). `None` if the
/// stack it was entered on is gone (a reset meanwhile): nothing to record, as [`leave`].
#[cold]
#[inline(never)]
pub fn pend(py: Python<'_>, entry: Entry) -> Option<Pending> {
    if EPOCH.get(py).get() != entry.epoch {
        return None;
    }
    // SAFETY: the epoch is current, so the stack is alive in `Profile::stacks`.
    let stack = unsafe { &mut *entry.stack };
    if stack.frames.len() != entry.depth {
        return None;
    }
    let frame = profile(py).tree.suspend(stack)?;
    Some(Pending {
        node: frame.node,
        site: u32::MAX,
        parent: stack.top(),
        start: frame.start,
        child_ticks: frame.child_ticks,
        recursive: frame.recursive,
        epoch: entry.epoch,
        // SAFETY: the entry's callee is live (or NULL) while its call has not been left.
        callee: unsafe { Bound::from_borrowed_ptr_or_opt(py, entry.callee) }.map(Bound::unbind),
    })
}

/// A step of the awaited work begins: its node goes on the running task's (or thread's)
/// stack. Returns that stack and its depth, to check at [`suspend`]; `None` if nothing was
/// pushed.
fn resume(py: Python<'_>, pending: &Pending) -> Option<(*mut Stack, usize)> {
    let epoch = EPOCH.get(py).get();
    if epoch != pending.epoch
        || pending.node == FLAT_ONLY
        || ACTIVE.load(Ordering::Relaxed) & TREE == 0
    {
        return None;
    }
    let stack = my_stack(py, epoch);
    let p = profile(py);
    // SAFETY: this epoch's stack; nothing else borrows it now.
    let stack_ref = unsafe { &mut *stack };
    let link = Link { node: pending.node };
    // The call's own start (only the slow-call hook reads a resumed frame's start): the
    // frame stands for the same call at every step.
    // SAFETY: the pending call's node is of this epoch's tree (checked above).
    unsafe { p.tree.enter(stack_ref, link, pending.start) };
    Some((stack, stack_ref.frames.len()))
}

/// The step is over: its node leaves the stack, keeping the time of the calls made in it.
fn suspend(py: Python<'_>, pending: &mut Pending, resumed: Option<(*mut Stack, usize)>) {
    let Some((stack, depth)) = resumed else {
        return;
    };
    if EPOCH.get(py).get() != pending.epoch {
        return;
    }
    let p = profile(py);
    // SAFETY: the epoch is unchanged, so the stack `resume` pushed on is alive.
    let stack = unsafe { &mut *stack };
    if stack.frames.len() != depth {
        return;
    }
    if let Some(frame) = p.tree.suspend(stack) {
        pending.child_ticks += frame.child_ticks;
    }
}

/// The awaited result is ready (or the wait raised): the call ends now.
fn finish_awaited(py: Python<'_>, pending: &Pending, raised: bool) {
    let end = clock::ticks();
    if EPOCH.get(py).get() != pending.epoch {
        return;
    }
    let ticks = end.wrapping_sub(pending.start);
    if pending.node == FLAT_ONLY {
        add(profile(py), pending.site, ticks, raised);
        return;
    }
    let frame = Frame {
        node: pending.node,
        start: pending.start,
        child_ticks: pending.child_ticks,
        recursive: pending.recursive,
    };
    let stack = my_stack(py, pending.epoch);
    // SAFETY: this epoch's stack; nothing else borrows it now.
    if let Some(top) = unsafe { (*stack).frames.last_mut() } {
        if top.node == pending.parent {
            top.child_ticks += ticks;
        }
    }
    // Each task has a root (and a lane) of its own: the wait nests in its task's calls.
    finish(profile(py), &frame, ticks, end, raised);
    if ticks >= crate::slow_calls::min_ticks() {
        // SAFETY: this epoch's stack (checked above).
        let callee = pending.callee.as_ref().map_or(null_mut(), |c| c.as_ptr());
        slow_call(
            py,
            unsafe { &*stack },
            usize::MAX,
            (frame.node, frame.start),
            end,
            raised,
            callee,
        );
    }
}

// The slow-call hook (`slow_calls.rs`, `recompyle.otel`): a call that lasted at least the
// minimum is handed over with the calls still open on its thread's stack.
#[cold]
#[inline(never)]
fn slow_call(
    py: Python<'_>,
    stack: &Stack,
    depth: usize,
    (node, start): (NodeId, u64),
    end: u64,
    raised: bool,
    callee: *mut ffi::PyObject,
) {
    let p = profile(py);
    let open_frame = |depth: usize, node: NodeId, start: u64| {
        let dense = p.tree.nodes.get(node as usize)?.site as usize;
        Some(crate::slow_calls::OpenFrame {
            depth,
            node,
            start,
            site: *p.site_ids.get(dense)?,
            awaited: p.awaited.get(dense) == Some(&true),
        })
    };
    let Some(call) = open_frame(depth, node, start) else {
        return;
    };
    let open = (stack.frames.iter().enumerate().skip(1))
        .filter_map(|(d, f)| open_frame(d, f.node, f.start))
        .collect();
    let key = stack as *const Stack as usize;
    // SAFETY: `callee` is the entry's borrowed callee (its call is being left now) or an
    // awaited call's own reference, or NULL.
    unsafe { crate::slow_calls::ended(py, key, call, open, end, raised, callee) };
}

/// End the call `entry` entered.
#[inline(always)]
pub fn leave(py: Python<'_>, entry: Entry, raised: bool) {
    let end = clock::ticks();
    if EPOCH.get(py).get() != entry.epoch {
        return; // reset while the call ran: its stack is gone
    }
    // SAFETY: the epoch is current, so the stack is alive in `Profile::stacks`.
    let stack = unsafe { &mut *entry.stack };
    if stack.frames.len() != entry.depth {
        return;
    }
    // SAFETY: the call was entered, after the profile was made.
    let p = unsafe { profile_made(py) };
    // The site's flat row is the sum of its nodes' (`site_rows`), taken when read.
    // SAFETY: the stack is as the call left it (same epoch and depth): its frame on top
    // of at least the root, all of this epoch's tree.
    let Ended {
        node, start, ticks, ..
    } = unsafe { p.tree.end(&mut p.windows, stack, end, raised) };
    if p.timeline.users != 0 {
        record_event(&mut p.timeline, node, start, ticks, end, raised);
    }
    if ticks >= crate::slow_calls::min_ticks() {
        let depth = stack.frames.len();
        slow_call(py, stack, depth, (node, start), end, raised, entry.callee);
    }
}

#[inline(always)]
fn finish(p: &mut Profile, frame: &Frame, ticks: u64, end: u64, raised: bool) {
    // The site's flat row is the sum of its nodes' (`site_rows`), taken when read.
    p.tree.add(&mut p.windows, frame, ticks, raised);
    if p.timeline.users != 0 {
        record_event(&mut p.timeline, frame.node, frame.start, ticks, end, raised);
    }
}

#[inline(never)]
fn record_event(t: &mut Timeline, node: NodeId, start: u64, ticks: u64, end: u64, raised: bool) {
    if ticks < t.min_ticks {
        return;
    }
    if t.events.len() >= t.cap {
        t.dropped += 1;
        return;
    }
    t.events.push(Event {
        node,
        raised,
        start,
        end,
    });
}

/// Count a call at `site_obj` that runs unreported because reported calls already nest as
/// deep as allowed: at its site and in the tree under the innermost reported call, with no
/// time (its time is inside that call's).
///
/// # Safety
/// `site_obj` must be a live object and the GIL held.
#[cold]
#[inline(never)]
pub unsafe fn count_untimed(py: Python<'_>, site_obj: *mut ffi::PyObject) {
    // SAFETY: the GIL is held and `site_obj` is live.
    if unsafe { ffi::PyLong_CheckExact(site_obj) } == 0 {
        return;
    }
    // SAFETY: as above.
    let Some(dense) = (unsafe { dense_of(py, site_obj) }) else {
        return;
    };
    let tree_on = ACTIVE.load(Ordering::Relaxed) & TREE != 0;
    let epoch = EPOCH.get(py).get();
    let stack = if tree_on {
        my_stack(py, epoch)
    } else {
        null_mut()
    };
    let p = profile(py);
    if !stack.is_null() {
        // In the tree (which the site's flat row sums when read).
        // SAFETY: this epoch's stack, from `my_stack`; nothing else borrows it now.
        let top = unsafe { (*stack).top() };
        let Link { node, .. } = p.tree.link(top, dense, dense as usize + 1);
        p.tree.add_untimed(&mut p.windows, node);
    } else if let (Some(s), Some(mark)) = (
        p.flat.get_mut(dense as usize),
        p.flat_marks.get_mut(dense as usize),
    ) {
        p.windows.touch(Kind::Sites, dense, s, mark);
        s.calls += 1;
        s.untimed += 1;
    }
}

fn clear_cache(py: Python<'_>) {
    let entries = std::mem::replace(&mut CACHE.get_mut(py).0, [(null_mut(), 0); CACHE_SLOTS]);
    for (key, _) in entries {
        if !key.is_null() {
            // SAFETY: the cache held a reference to `key`; the GIL is held.
            unsafe { ffi::Py_DECREF(key) };
        }
    }
}

fn set_active(py: Python<'_>) {
    let (users, tree) = USERS.get(py).get();
    let (on, off) = if users == 0 {
        (0, PROFILING | TREE)
    } else if tree == 0 {
        (PROFILING, TREE)
    } else {
        (PROFILING | TREE, 0)
    };
    crate::listeners::switch(py, on, off);
}

/// Start recording (one more profiler active); `tree=False` asks for the flat table only,
/// which is cheaper per call.
#[pyfunction]
#[pyo3(signature = (tree = true))]
pub fn profiler_start(py: Python<'_>, tree: bool) {
    clock::start();
    static TASKS: std::sync::Once = std::sync::Once::new();
    TASKS.call_once(|| init_tasks(py));
    let users = USERS.get(py);
    let (n, t) = users.get();
    users.set((n + 1, t + u32::from(tree)));
    set_active(py);
}

/// One profiler less; recording stops when none is left. What was recorded is kept.
#[pyfunction]
#[pyo3(signature = (tree = true))]
pub fn profiler_stop(py: Python<'_>, tree: bool) {
    let users = USERS.get(py);
    let (n, t) = users.get();
    users.set((n.saturating_sub(1), t.saturating_sub(u32::from(tree))));
    set_active(py);
    if n == 1 {
        // The last profiler stopped: the contexts of the tasks that are gone are released
        // now rather than at the next sweep, which may never come.
        let mut freed = Vec::new();
        let p = profile(py);
        sweep(p, &mut freed);
        p.sweep_at = (2 * (p.tasks.len() + p.retired.len())).max(64);
        // Dropped once the profile is no longer borrowed (a context's release runs code).
        drop(freed);
    }
}

/// Whether any profiler is recording.
#[pyfunction]
pub fn profiler_running() -> bool {
    ACTIVE.load(Ordering::Relaxed) & PROFILING != 0
}

/// Forget everything recorded (every profiler's counts start again from zero).
#[pyfunction]
pub fn profiler_reset(py: Python<'_>) {
    clear_cache(py);
    let epoch = EPOCH.get(py);
    epoch.set(epoch.get() + 1);
    LAST.get(py).set(Last::NONE);
    let old = std::mem::take(&mut profile(py).timeline);
    profile(py).timeline = Timeline {
        generation: old.generation + 1,
        events: Vec::new(),
        dropped: 0,
        ..old
    };
    let timeline = std::mem::take(&mut profile(py).timeline);
    let windows = profile(py).windows.carry();
    let old = PROFILE.get_mut(py).replace(Profile {
        timeline,
        windows,
        ..Profile::default()
    });
    // Dropped once out of the cell: releasing the tasks' contexts may run any code.
    drop(old);
}

/// Add one node's totals (or their change over a window) to its site's flat row: every
/// call, every call's inclusive time (a recursive re-entry's too, kept apart in the node),
/// the longest call, raised and untimed counts. `max_ticks` is the caller's choice (the
/// longest ever, or in a window).
fn add_node_to_row(row: &mut Totals, t: &Totals, max_ticks: u64) {
    row.calls += t.calls;
    row.ticks += t.ticks.wrapping_add(t.rec_ticks);
    row.max_ticks = row.max_ticks.max(max_ticks);
    row.raised += t.raised;
    row.untimed += t.untimed;
}

/// Every site's flat row by dense index, the longest call in `max_ticks` being the longest
/// ever: the calls recorded without the tree (the flat-only profiler, untimed calls with
/// the tree off) plus the sum of the site's nodes, where the tree records its calls.
fn site_rows(p: &Profile) -> Vec<Totals> {
    let mut rows: Vec<Totals> = (p.flat.iter().zip(&p.flat_marks))
        .map(|(s, mark)| Totals {
            max_ticks: mark.max_ever(s.max_ticks),
            ..*s
        })
        .collect();
    for n in &p.tree.nodes {
        if let Some(row) = rows.get_mut(n.site as usize) {
            add_node_to_row(row, &n.totals, n.mark.max_ever(n.totals.max_ticks));
        }
    }
    rows
}

/// `(site_id, calls, total_ns, max_ns, raised)` for every site called so far.
#[pyfunction]
pub fn profiler_snapshot(py: Python<'_>) -> Vec<(u64, u64, u64, u64, u64)> {
    let scale = clock::ns_per_tick();
    let p = profile(py);
    site_rows(p)
        .iter()
        .zip(&p.site_ids)
        .filter(|(s, _)| s.calls != 0)
        .map(|(s, &site)| {
            (
                site,
                s.calls,
                (s.ticks as f64 * scale).round() as u64,
                (s.max_ticks as f64 * scale).round() as u64,
                s.raised,
            )
        })
        .collect()
}

/// `(parent, site index or -1, root, calls, ticks, self_ticks, max_ticks, raised, untimed)`.
type NodeRow = (i64, i64, u32, u64, u64, u64, u64, u64, u64);

/// Raw counts (ticks), for the Python side's per-profiler views.
#[pyclass(module = "recompyle._core", frozen, get_all)]
pub struct Counts {
    /// Nanoseconds per tick.
    pub ns_per_tick: f64,
    /// `(site_id, calls, ticks, max_ticks, raised, untimed)` by dense site index.
    pub sites: Vec<(u64, u64, u64, u64, u64, u64)>,
    /// `(parent, site index or -1, root, calls, ticks, self_ticks, max_ticks, raised,
    /// untimed)` by node index; a root's parent is -1.
    pub nodes: Vec<NodeRow>,
    /// `(node, thread_id, name or None, kind, tasks)` per root, kind `"thread"` or
    /// `"task"`, tasks the number of asyncio tasks that ran under it.
    pub roots: Vec<(u32, u64, Option<String>, &'static str, u64)>,
    /// Bumped by every reset: counts of another epoch are not comparable.
    pub epoch: u64,
    /// Clock tick when taken.
    pub now: u64,
    /// Task stacks kept (tasks that may still make calls; the others' are freed as new
    /// tasks come).
    pub task_stacks: usize,
}

#[pyfunction]
pub fn profiler_counts(py: Python<'_>) -> Counts {
    let ns_per_tick = clock::ns_per_tick_cached();
    let epoch = EPOCH.get(py).get();
    let p = profile(py);
    let signed = |v: u32| if v == u32::MAX { -1 } else { i64::from(v) };
    Counts {
        ns_per_tick,
        sites: site_rows(p)
            .iter()
            .zip(&p.site_ids)
            .map(|(s, &id)| (id, s.calls, s.ticks, s.max_ticks, s.raised, s.untimed))
            .collect(),
        nodes: p
            .tree
            .nodes
            .iter()
            .map(|n| {
                let t = n.totals;
                (
                    signed(n.parent),
                    signed(n.site),
                    n.root,
                    t.calls,
                    t.ticks,
                    t.self_ticks,
                    n.mark.max_ever(t.max_ticks),
                    t.raised,
                    t.untimed,
                )
            })
            .collect(),
        roots: p
            .roots
            .iter()
            .map(|r| {
                let tasks = p
                    .tree
                    .nodes
                    .get(r.node as usize)
                    .map_or(0, |n| n.totals.calls);
                if r.task {
                    return (r.node, r.thread_id, r.name.clone(), "task", tasks);
                }
                let name = r.name.clone().or_else(|| thread_name(py, r.thread_id));
                (r.node, r.thread_id, name, "thread", tasks)
            })
            .collect(),
        epoch,
        now: clock::ticks(),
        task_stacks: p.tasks.len() + p.retired.len(),
    }
}

/// A profiler's window opens (it starts, or goes on after a stop): `(epoch, start number,
/// clock tick now, nanoseconds per tick)`. O(1): nothing is copied until a node or site
/// changes.
#[pyfunction]
pub fn profiler_window_open(py: Python<'_>) -> (u64, u32, u64, f64) {
    let epoch = EPOCH.get(py).get();
    let seq = profile(py).windows.open();
    (epoch, seq, clock::ticks(), clock::ns_per_tick_cached())
}

/// The window `seq` closes (its profiler stopped); what it counted should be read first.
#[pyfunction]
pub fn profiler_window_close(py: Python<'_>, seq: u32) {
    profile(py).windows.close(seq);
}

/// `(root, node, thread_id, name or None, kind, tasks)`.
type WindowRoot = (u32, u32, u64, Option<String>, &'static str, u64);

/// `(index, parent, site id, root, calls, ticks, self_ticks, max_ticks, raised, untimed)`.
type WindowNode = (u32, i64, u64, u32, u64, u64, u64, u64, u64, u64);

/// What changed while one profiler's window was open, in ticks: only the sites and nodes
/// its calls touched.
#[pyclass(module = "recompyle._core", frozen, get_all)]
pub struct Window {
    /// Nanoseconds per tick.
    pub ns_per_tick: f64,
    /// The native record's epoch (bumped by every reset).
    pub epoch: u64,
    /// Clock tick when taken.
    pub now: u64,
    /// `(site_id, calls, ticks, max_ticks, raised, untimed)` per site changed.
    pub sites: Vec<(u64, u64, u64, u64, u64, u64)>,
    /// `(index, parent, site_id, root, calls, ticks, self_ticks, max_ticks, raised,
    /// untimed)` per node changed.
    pub nodes: Vec<WindowNode>,
    /// `(root, node, thread_id, name or None, kind, tasks)` for the roots of those nodes,
    /// tasks the number of asyncio tasks first seen under it in the window.
    pub roots: Vec<WindowRoot>,
}

/// What changed since the window `seq` opened: O(changes), not O(tree).
#[pyfunction]
pub fn profiler_window(py: Python<'_>, seq: u32) -> Window {
    let ns_per_tick = clock::ns_per_tick_cached();
    let epoch = EPOCH.get(py).get();
    let p = profile(py);
    // Each site's change: its own flat row's (calls made without the tree) plus its nodes'
    // (added below), by dense index.
    let mut site_rows: std::collections::BTreeMap<u32, Totals> = p
        .windows
        .delta(Kind::Sites, seq, |i| p.flat.get(i as usize).copied())
        .into_iter()
        .collect();
    let mut roots: Vec<u32> = Vec::new();
    let mut tasks: HashMap<u32, u64, BuildHasherDefault<IdHasher>> = HashMap::default();
    let nodes: Vec<WindowNode> = p
        .windows
        .delta(Kind::Nodes, seq, |i| {
            p.tree.nodes.get(i as usize).map(|n| n.totals)
        })
        .into_iter()
        .filter_map(|(i, t)| {
            let n = p.tree.nodes.get(i as usize)?;
            if n.parent == u32::MAX {
                // A root node: its calls are the tasks that began under it.
                tasks.insert(n.root, t.calls);
                return None;
            }
            let site = *p.site_ids.get(n.site as usize)?;
            add_node_to_row(site_rows.entry(n.site).or_default(), &t, t.max_ticks);
            let parent = if n.parent == u32::MAX {
                -1
            } else {
                i64::from(n.parent)
            };
            roots.push(n.root);
            Some((
                i,
                parent,
                site,
                n.root,
                t.calls,
                t.ticks,
                t.self_ticks,
                t.max_ticks,
                t.raised,
                t.untimed,
            ))
        })
        .collect();
    let sites = site_rows
        .into_iter()
        .filter_map(|(i, t)| {
            let id = *p.site_ids.get(i as usize)?;
            Some((id, t.calls, t.ticks, t.max_ticks, t.raised, t.untimed))
        })
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let roots = roots
        .into_iter()
        .filter_map(|index| {
            let r = p.roots.get(index as usize)?;
            Some((index, r.node, r.thread_id, r.name.clone(), r.task))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(index, node, thread_id, name, task)| {
            let count = tasks.get(&index).copied().unwrap_or(0);
            if task {
                (index, node, thread_id, name, "task", count)
            } else {
                let name = name.or_else(|| thread_name(py, thread_id));
                (index, node, thread_id, name, "thread", count)
            }
        })
        .collect();
    Window {
        ns_per_tick,
        epoch,
        now: clock::ticks(),
        sites,
        nodes,
        roots,
    }
}

/// One more profiler records a timeline: at most `cap` events, calls shorter than
/// `min_ns` left out. Returns `(generation, first event index, dropped so far)`.
#[pyfunction]
pub fn timeline_acquire(py: Python<'_>, cap: usize, min_ns: u64) -> (u64, usize, u64) {
    let scale = clock::ns_per_tick_cached();
    let t = &mut profile(py).timeline;
    if t.users == 0 {
        t.events = Vec::new();
        t.dropped = 0;
        t.generation += 1;
        t.cap = cap;
        t.min_ticks = (min_ns as f64 / scale) as u64;
    } else {
        t.cap = t.cap.max(cap);
        t.min_ticks = t.min_ticks.min((min_ns as f64 / scale) as u64);
    }
    t.users += 1;
    (t.generation, t.events.len(), t.dropped)
}

/// A profiler stops recording its timeline: `(generation, end index, dropped so far)`.
/// The events stay until the next first profiler asks for a timeline.
#[pyfunction]
pub fn timeline_release(py: Python<'_>) -> (u64, usize, u64) {
    let t = &mut profile(py).timeline;
    t.users = t.users.saturating_sub(1);
    (t.generation, t.events.len(), t.dropped)
}

/// `(generation, events[start..end])`, each `(node, start_tick, end_tick, raised)`.
#[pyfunction]
pub fn timeline_events(
    py: Python<'_>,
    start: usize,
    end: usize,
) -> (u64, Vec<(u32, u64, u64, bool)>) {
    let t = &profile(py).timeline;
    let end = end.min(t.events.len());
    let start = start.min(end);
    (
        t.generation,
        t.events[start..end]
            .iter()
            .map(|e| (e.node, e.start, e.end, e.raised))
            .collect(),
    )
}
