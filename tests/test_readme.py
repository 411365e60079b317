"""The README says where this tool differs from the paper's setup (issue 15, point 7)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_the_known_differences_from_the_papers_setup() -> None:
    text = README.read_text()
    assert "## Known differences from the paper's setup" in text
    section = text.split("## Known differences from the paper's setup", 1)[1].split("\n## ", 1)[0]
    for topic in ("**Momentum form.**", "**BN statistics.**", "**Padding after mean subtraction.**",
                  "**The fc layer's initialisation.**"):
        assert topic in section, topic
    assert "v = m v + lr g" in section and "64 images each" in section
