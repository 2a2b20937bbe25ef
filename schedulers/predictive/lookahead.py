"""The lookahead plan: the cheapest sequence of backups over the horizon, a shortest path over start steps.

Node j = a backup starting at candidate j. The first hop (from the current restore point)
costs its exact planned job cost; a hop j -> j' costs the bytes dirtied between the two
snapshots (kappa * predicted_io ** dirty_exponent) at j''s cost per GB, and is allowed when
j' starts and finishes within RPO of j. Bytes dirtied after the last backup of the horizon
are charged at the horizon's median cost per GB, and that backup must cover the horizon's end.

The graph is a DAG in time order, so one pass over the nodes relaxes every path. The hops into
node j' are computed when j' is relaxed, from the earlier nodes only (a hop back in time is never
allowed): the whole fleet in one pass and a triangle of the hop matrix, `[j', volumes]` at a time
for a large fleet (each operation then runs along the volumes), `[volumes, hops]` for a small one.
Every path gives the same bits (`tests/test_scale_kernels.py`).
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from common.units import GB, MB
from schedulers.predictive.params import PredictiveParams

_CHUNK = 32  # volumes per batch of hop costs (keeps the temporaries in cache)
_FUSED = 256  # from this many volumes, each node's hops are computed as it is relaxed
_FEW = 8  # up to this many volumes, all nodes are relaxed at once until nothing changes


def lookahead(p: PredictiveParams, st, jb, sl: np.ndarray, growth, alpha, w0, h_end: float):
    """Cheapest sequence of backups over the horizon for volumes `sl` (`st`, `jb`: the window
    planner's steps and jobs). Returns (first node per volume, -1 = none needed yet; the plan's
    cost; the cost of no backup in the horizon; the paths, start times of the volumes starting now)."""
    m, s_t, frac0 = st.m, st.s_t, st.frac0
    io_cum, io_step, r_start = st.io_cum[sl], st.io_step[sl], st.r[sl, :m]
    size_now, first_cost, cpb = jb.size[sl, 0], jb.first_cost[sl], jb.cpb[sl]
    rpo, margin, cpb_ref, deadline = jb.rpo[sl], jb.margin[sl], jb.med[sl], jb.deadline[sl]
    pcount = sl.size
    io_end = io_cum[:, m - 1] + io_step[:, m - 1] * ((1.0 - frac0) if m == 1 else 1.0)
    wj = io_cum  # predicted I/O from now to each candidate start
    dist, pred, first = _shortest_paths(p, first_cost, wj, s_t, r_start, cpb, rpo - margin, growth, alpha)
    rows = np.arange(pcount)
    tail = np.maximum(io_end[:, None] - wj, 0.0)
    term = cpb_ref[:, None] * growth[:, None] * tail ** alpha[:, None] * (1.0 + p.size_margin) / GB
    covers = s_t[None, :] + (rpo - margin)[:, None] >= h_end
    total = np.where(covers, dist + term, np.inf)
    end = np.argmin(total, axis=1)
    plan_cost = total[rows, end]
    w_total = w0[:, 0] + io_end
    wait_cost = np.where(
        deadline - margin >= h_end,
        cpb_ref * (size_now / (1.0 + p.size_margin) + growth * (w_total**alpha - w0[:, 0] ** alpha)) * (1.0 + p.size_margin) / GB,
        np.inf,
    )
    go = np.isfinite(plan_cost) & (plan_cost < wait_cost)
    first_node = np.where(go, first[rows, end], -1)
    paths: list = [None] * pcount
    for q in np.flatnonzero(first_node == 0).tolist():  # the reasons of volumes starting now
        node, nodes = int(end[q]), []
        while node >= 0:
            nodes.append(float(s_t[node]))
            node = int(pred[q, node])
        paths[q] = nodes[::-1]
    return first_node, plan_cost, wait_cost, paths


@functools.lru_cache(maxsize=8)
def _triangle(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(destination, source, offset of each destination's run): the hops j -> j2 with j < j2, packed
    destination by destination (the hops into j2 are columns `off[j2] : off[j2] + j2`). Kept per `m`
    (read only): most plans have the same number of candidate starts."""
    dst = np.repeat(np.arange(m), np.arange(m))
    src = np.concatenate([np.arange(j) for j in range(m)]) if m > 1 else np.zeros(0, np.int64)
    off = np.concatenate([[0], np.cumsum(np.arange(m))])[:m]
    out = dst, src.astype(np.int64), off
    for a in out:
        a.flags.writeable = False
    return out


def _hops(p: PredictiveParams, wj, s_t, rs, cg, over, rm, a32, g32, dst, src, out, back=None) -> None:
    """Cost of each hop `src -> dst` into `out` (`[volumes, hops]`; inf where not allowed): the bytes
    dirtied between the two snapshots at the destination's cost per GB, when its job starts and
    finishes within RPO (less the margin) of the previous snapshot; `back` marks the hops that go back
    in time. `dst` runs in order, each node repeated once per hop into it (`np.repeat` gathers by it)."""
    counts = np.bincount(dst, minlength=wj.shape[1])
    gap = np.repeat(wj, counts, axis=1)
    gap -= np.take(wj, src, axis=1)
    hop_size = np.log(np.maximum(gap, 1.0, out=gap).astype(np.float32))
    hop_size *= a32
    np.exp(hop_size, out=hop_size)
    hop_size *= g32
    np.maximum(hop_size, MB, out=hop_size)
    limit = rm - (s_t[dst] - s_t[src])[None, :]  # the room the hop's job has
    if back is not None:  # a hop back in time (or to itself) has no room
        limit = np.where(back[None, :], -1.0, limit)
    limit *= np.repeat(rs, counts, axis=1)
    np.multiply(hop_size, np.repeat(cg, counts, axis=1), out=out)
    if over is not None:
        out += np.repeat(over, counts, axis=1)
    # (a hop's size is at least 1 MB, so a size within its limit implies a positive limit)
    np.copyto(out, np.inf, where=~(hop_size <= limit))


def _relax_fused(dist, wj, s_t, rs, cg, over, rm, a32, g32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The relaxation with each node's hops computed as it is relaxed, for many volumes: (cost,
    predecessor, first node), `[volumes, m]` views of node-major arrays.

    The work is laid out node-major (`[sources, volumes]`): every operation then runs along the
    volumes, the long contiguous axis, and the cheapest hop into a node is a reduction over
    sources (`np.minimum.reduce`), the `argmin` only run for the volumes it improves. Sources a hop
    can never leave from (its job would have no time left before the RPO for any volume: the
    hop is refused whatever its size, every hop being at least 1 MB) are not computed; their
    cost would be infinite, which no `argmin` of a row with a finite or NaN entry picks and which
    improves no node. The same operations on the same values as the whole `[volumes, j2]`
    computation, so the same bits."""
    pcount, m = dist.shape
    wt, rst, cgt, dt = (np.ascontiguousarray(x.T) for x in (wj, rs, cg, dist))
    ovt = None if over is None else np.ascontiguousarray(over.T)
    pt = np.full((m, pcount), -1, np.int64)
    ft = np.repeat(np.arange(m)[:, None], pcount, axis=1)
    rmr, a, g = rm[:, 0], a32[:, 0], g32[:, 0]
    reach = np.inf if np.isnan(rmr).any() else float(rmr.max())
    room = _room_table(s_t, rmr)
    b32, b64, blim, bok, ones, mbs = _scratch(pcount * m)
    ds = s_t[:, None] - s_t[None, :]  # [into, from]: the time between two starts
    reached = np.tri(m, m, -1, bool) & (reach - ds > 0)
    los = np.where(reached.any(axis=1), reached.argmax(axis=1), np.arange(m)).tolist()
    for j2, lo in enumerate(los):
        k = j2 - lo
        if k == 0:
            continue
        n = k * pcount
        hop, c, limit, bad = (b[:n].reshape(k, pcount) for b in (b32, b64, blim, bok))
        np.subtract(wt[j2], wt[lo:j2], out=hop, casting="same_kind")
        np.maximum(hop, ones[:n].reshape(k, pcount), out=hop)  # (rounding to float32 is monotone: as the maximum in float64 first)
        np.log(hop, out=hop)
        hop *= a
        np.exp(hop, out=hop)
        hop *= g
        np.maximum(hop, mbs[:n].reshape(k, pcount), out=hop)
        np.copyto(c, hop)  # the size in float64 (exact), as the comparison and the cost read it
        if room is None:
            np.subtract(rmr, ds[j2, lo:j2, None], out=limit)
            limit *= rst[j2]
        else:
            if lo == 0:
                np.multiply(rmr - ds[j2, 0], rst[j2], out=limit[0])
            l1 = max(lo, 1)
            np.multiply(room[m - 2 - (j2 - l1) : m - 2], rst[j2], out=limit[l1 - lo :])
        np.less_equal(c, limit, out=bad)
        np.logical_not(bad, out=bad)
        c *= cgt[j2]
        if ovt is not None:
            c += ovt[j2]
        np.copyto(c, np.inf, where=bad)
        c += dt[lo:j2]
        _improve_t(c, lo, j2, dt, pt, ft)
    return dt.T, pt.T, ft.T


_LOCAL = threading.local()  # each thread its own work buffers


def _scratch(size: int) -> list[np.ndarray]:
    """Work buffers of at least `size` elements (float32, float64, float64, bool) and the constants 1
    and 1 MB in float32, kept between calls: fresh pages cost more to touch than the work they hold."""
    bufs = getattr(_LOCAL, "buffers", None)
    if bufs is None or bufs[0].size < size:
        bufs = [np.empty(size, np.float32), np.empty(size), np.empty(size), np.empty(size, bool)]
        bufs += [np.ones(size, np.float32), np.full(size, MB, np.float32)]
        _LOCAL.buffers = bufs
    return bufs


def _room_table(s_t: np.ndarray, rm: np.ndarray) -> np.ndarray | None:
    """`room[m - 2 - d, v] = rm[v] - (s_t[j + d] - s_t[j])`, the same for every later start j >= 1 (the steps are a
    grid whose differences are exact), so that a hop's room is read rather than computed; None where
    some difference is not the same for every j (then it is computed)."""
    m = s_t.size
    if m < 3:
        return None
    d = s_t[1:, None] - s_t[None, 1:]  # [j2 - 1, j - 1]
    jj = np.arange(m - 1)
    diff = jj[:, None] - jj[None, :]
    low = diff > 0
    steps = s_t[1:] - s_t[1]  # steps[k] = s_t[1 + k] - s_t[1]
    if not np.array_equal(d[low], steps[diff[low]]):
        return None
    return (rm[None, :] - steps[:, None])[::-1].copy()  # by decreasing gap: the hops into a node read a slice in order


def _improve_t(c: np.ndarray, lo: int, j2: int, dt: np.ndarray, pt: np.ndarray, ft: np.ndarray) -> None:
    """`_improve` node-major: `c[i, v]` is volume v's cost into `j2` from node `lo + i`. The minimum
    decides which volumes improve (a NaN, which `argmin` would pick, improves none), and their
    `argmin` (the first cheapest source) and its cost are read from `c` as `_improve` reads them."""
    best = np.minimum.reduce(c, axis=0)
    b = np.flatnonzero(best < dt[j2])
    if b.size:
        i = c.T[b].argmin(axis=1)
        dt[j2, b] = c[i, b]
        pt[j2, b] = i + lo
        ft[j2, b] = ft[i + lo, b]


def _relax_fixed_point(init: np.ndarray, dense: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The relaxation for a few volumes, every node at once until nothing changes (as many rounds as
    the cheapest paths have hops, not one per node). Each node's cost is its first hop's, or the
    cheapest hop into it from the others' current costs where that is lower: on a DAG the only fixed
    point is what relaxing the nodes in time order gives, bit for bit (the same sums, the same first
    `argmin`), and the predecessors and first nodes follow from the last round."""
    pcount, m = init.shape
    cur = init
    rows = np.arange(pcount * m)  # (direct indexing: what `take_along_axis` does, without its set-up)
    for _ in range(m + 1):
        c = cur[:, None, :] + dense  # [volume, into, from]
        i = c.argmin(axis=2)
        v = c.reshape(-1, m)[rows, i.ravel()].reshape(pcount, m)
        better = v < init
        nxt = np.where(better, v, init)
        if np.array_equal(nxt.view(np.int64), cur.view(np.int64)):
            break
        cur = nxt
    jj = np.arange(m)
    pred = np.where(better, i, -1)
    first = np.where(better, i, jj[None, :])  # each node's predecessor (itself when none), then halved
    vol = np.arange(pcount)[:, None]
    for _ in range(m.bit_length() + 1):
        first = first[vol, first]
    return cur, pred, first


def _shortest_paths(p: PredictiveParams, first_cost, wj, s_t, r_start, cpb, rpo_left, growth, alpha):
    """(cost, predecessor, first node) of the cheapest path to each node, `[volumes, m]`.

    A hop into node j2 from a node at or after it is never allowed (its cost is infinite), so
    only the earlier nodes are searched; where the costs hold a NaN or -inf (or a rate is
    negative) the later nodes are searched too, as `argmin` over the whole row would."""
    pcount, m = first_cost.shape
    jj = np.arange(m)
    # ties go to later backups (and to waiting): a later snapshot covers longer
    tie = 1e-9 * (m - jj)[None, :]
    dist = first_cost * (1.0 + tie) + tie
    pred = np.full((pcount, m), -1, np.int64)
    first = np.tile(jj, (pcount, 1))
    rows = np.arange(pcount)
    a32 = alpha.astype(np.float32)[:, None]
    g32 = (growth * (1.0 + p.size_margin)).astype(np.float32)[:, None]
    cg = cpb / GB  # cost per byte of each node's own job
    over = p.job_overhead_gb * np.where(np.isfinite(cpb), cpb, 0.0)
    if not (np.any(over != 0) or np.any(np.signbit(over)) or np.any(np.signbit(cg))):
        over = None  # adding +0.0 to a cost that is not -0.0 changes nothing: skip it
    rs = r_start * (MB / p.duration_safety)
    rm = rpo_left[:, None]
    back = None
    whole = bool(np.any(np.isnan(dist) | (dist == -np.inf)) or np.any(rs < 0))
    if not whole and pcount >= _FUSED:
        return _relax_fused(dist, wj, s_t, rs, cg, over, rm, a32, g32)
    if whole:
        dst, src = np.repeat(jj, m), np.tile(jj, m)  # every pair, as a search over the whole row
        off, width, back = jj * m, np.full(m, m), src >= dst
    else:
        (dst, src, off), width = _triangle(m), jj
    hops = np.empty((pcount, dst.size))
    for c in range(0, pcount, _CHUNK):
        sl = slice(c, c + _CHUNK)
        osl = None if over is None else over[sl]
        _hops(p, wj[sl], s_t, rs[sl], cg[sl], osl, rm[sl], a32[sl], g32[sl], dst, src, hops[sl], back)
    if not whole and pcount <= _FEW:
        dense = np.full((pcount, m, m), np.inf)  # [volume, into, from]; a hop back in time is never allowed
        dense[:, dst, src] = hops
        return _relax_fixed_point(dist, dense)
    for j2 in range(1, m):
        o, w = off[j2], width[j2]
        _improve(dist[:, :w] + hops[:, o : o + w], j2, rows, dist, pred, first)
    return dist, pred, first


def _improve(c: np.ndarray, j2: int, rows: np.ndarray, dist: np.ndarray, pred: np.ndarray, first: np.ndarray) -> None:
    """Node `j2` takes the cheapest hop into it (`c[:, i]`: reached from node i) where that beats its own cost."""
    i = c.argmin(axis=1)
    v = c[rows, i]
    better = v < dist[:, j2]
    if better.any():
        b = np.flatnonzero(better)
        dist[b, j2] = v[b]
        pred[b, j2] = i[b]
        first[b, j2] = first[b, i[b]]
