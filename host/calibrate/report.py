"""What a calibration writes: the device entry YAML, the latency PNG and fio's raw JSON.

The YAML's top-level keys are those of `sim.devices.DeviceClass` (`name`, `max_iops`,
`max_mbps`, `base_latency_ms`) plus `curve` (the measured points of
`sim.curve.LatencyCurve`), so a config can name the calibrated device; `calibration`
records how it was measured, every rung, and the held-out fit errors. Every file is
written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from common.atomic import atomic_path, atomic_write_text
from host.calibrate.ladder import Calibration
from sim.devices import latency_of_utilisation, utilisation


def entry(c: Calibration, name: str) -> dict:
    """The device entry (plain types only)."""
    s, f = c.settings, c.fit
    return {
        "name": name,
        "max_iops": round(c.max_iops, 1),
        "max_mbps": round(c.max_mbps, 3),
        "base_latency_ms": round(f.base_latency_ms, 6),
        "curve": f.curve.to_dict(),
        "calibration": {
            "target": str(c.target.path),
            "device": c.target.device,
            "direct_io": c.target.direct,
            "note": c.target.note or None,
            "fio": c.fio_version,
            "foreground": c.settings.fg.to_dict(),
            "background": {"rw": "read", "bs": s.bg_bs, "iodepth": s.bg_iodepth},
            "rung_s": s.rung_s,
            "ramp_s": s.ramp_s,
            "probes": {
                "max_mbps": c.max_mbps,
                "max_iops": c.max_iops,
                "at_queue_depth": {"mbps": s.bg_iodepth, "iops": s.fg.iodepth},
            },
            "rungs": [
                {
                    "bg_target_mbps": None if r.bg_target_mbps is None else round(r.bg_target_mbps, 3),
                    "bg_mbps": round(r.bg_mbps, 3),
                    "fg_iops": round(r.fg_iops, 1),
                    "fg_mean_ms": round(r.fg_mean_ms, 4),
                    "fg_p99_ms": round(r.fg_p99_ms, 4),
                    "u": round(u, 4),
                }
                for r, u in zip(c.rungs, f.u, strict=True)
            ],
            "fit_error": f.summary(),
        },
    }


def plot(c: Calibration, png: Path, name: str) -> None:
    """Measured mean and p99 foreground latency vs background MB/s, with both models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = c.fit
    bg = np.array([r.bg_mbps for r in c.rungs])
    fg_iops = float(np.mean([r.fg_iops for r in c.rungs]))
    fg_mbps = float(np.mean([r.fg_mbps for r in c.rungs]))
    io_mb = c.settings.bg_bs / 1e6
    x = np.linspace(0.0, max(bg.max(), c.max_mbps) * 1.02, 200)
    u = utilisation(fg_iops + x / io_mb, fg_mbps + x, c.max_iops, c.max_mbps)
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(bg, [r.fg_mean_ms for r in c.rungs], "o", color="tab:blue", label="measured mean")
    ax.plot(bg, [r.fg_p99_ms for r in c.rungs], "^", color="tab:gray", alpha=0.7, label="measured p99")
    mm1 = f.summary()["mm1"]["leave_one_out"]["mape_pct"]
    cur = f.summary()["curve"]["leave_one_out"]["mape_pct"]
    ax.plot(x, latency_of_utilisation(u, f.base_latency_ms), "-", color="tab:red", label=f"M/M/1 device class (LOO MAPE {mm1:.0f} %)")
    ax.plot(x, f.curve.latency_of_utilisation(u), "--", color="tab:green", label=f"measured curve (LOO MAPE {cur:.0f} %)")
    ax.set_yscale("log")
    ax.set_xlabel("background sequential read (MB/s)")
    ax.set_ylabel("foreground completion latency (ms)")
    fg = c.settings.fg
    ax.set_title(
        f"{name}: {c.target.device}, {fg.rw} {fg.bs >> 10} KiB at {fg.rate_iops} IOPS; "
        f"max {c.max_mbps:.0f} MB/s, {c.max_iops:,.0f} IOPS{'' if c.target.direct else ' (buffered I/O)'}",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write(c: Calibration, out: Path, name: str) -> dict[str, Path]:
    """device.yaml, latency.png and fio/*.json under `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"yaml": out / "device.yaml", "png": out / "latency.png"}
    header = "# Device entry from `piop calibrate` (measured with fio); see calibration.fit_error for the held-out errors.\n"
    atomic_write_text(paths["yaml"], header + yaml.safe_dump(entry(c, name), sort_keys=False, width=120))
    plot(c, paths["png"], name)
    for key, data in c.raw.items():
        atomic_write_text(out / "fio" / f"{key}.json", json.dumps(data, indent=1) + "\n")
    return paths
