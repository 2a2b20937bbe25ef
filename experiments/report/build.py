"""`build_report`: the whole report of one experiment folder, written atomically."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.atomic import atomic_write_text
from experiments.report import sections
from experiments.report.html import to_html
from experiments.report.load import comparison, load_runs


@dataclass
class Report:
    path: Path
    html: Path | None
    images: list[Path]
    sections: list[str]
    skipped: dict[str, str]

    def to_json(self) -> dict:
        return {
            "report": str(self.path),
            "html": str(self.html) if self.html else None,
            "images": [str(p) for p in self.images],
            "sections": self.sections,
            "skipped": self.skipped,
        }


def build_report(
    results_dir: str | Path,
    out: str | Path | None = None,
    html: bool = False,
    baseline: str | None = None,
    level: float = 0.95,
    timeline_days: float | None = 3.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> Report:
    """Write `report.md` (and `report.html`) with its images into `out` (default RESULTS_DIR/report).

    `progress(done, total, what)` is called before each step once the run folders are
    read (the comparison, each section and its figures, writing) and once at the end
    with `done == total`.
    """
    tell = progress or (lambda done, total, what: None)
    steps = 9 if html else 8
    rs = load_runs(results_dir)  # a user's mistake here ends the command before any bar is drawn
    out_dir = Path(out) if out else rs.root / "report"
    if out_dir.exists():  # images of an earlier report (e.g. of a policy since removed) go
        for f in out_dir.glob("*.png"):
            f.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    tell(0, steps, "comparing the policies")
    comp = comparison(rs, baseline, level)
    doc = sections.Doc(out_dir)
    sections.header(doc, rs, comp)
    work = [
        ("comparison figures and tables", lambda: sections.comparison_section(doc, comp)),
        ("impact distribution", lambda: sections.impact_section(doc, rs)),
        ("timelines", lambda: sections.timelines_section(doc, rs, timeline_days)),
        ("forecast figures", lambda: sections.forecast_section(doc, rs, timeline_days)),
        ("tuning studies", lambda: sections.tuning_section(doc, rs)),
        ("decision log", lambda: sections.decisions_section(doc, rs)),
    ]
    for i, (what, section) in enumerate(work, start=1):
        tell(i, steps, what)
        section()
    sections.footer(doc)
    tell(steps - (2 if html else 1), steps, "writing report.md")
    text = doc.text()
    path = out_dir / "report.md"
    atomic_write_text(path, text)
    html_path = None
    if html:
        tell(steps - 1, steps, "writing report.html")
        html_path = out_dir / "report.html"
        atomic_write_text(html_path, to_html(text, f"{rs.root.name} report"))
    tell(steps, steps, "done")
    return Report(path, html_path, doc.images, doc.sections, doc.skipped)
