r"""The README's Python example runs, and its links lead to pages that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_python_example_runs_and_fits(tmp_path, monkeypatch, capsys):
    (code,) = re.findall(r"```python\n(.*?)```", README, re.S)
    monkeypatch.chdir(tmp_path)  # it writes signal.pt
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "minuit: VALID" in out and (tmp_path / "signal.pt").exists()
    # 500 signal events at m_pole = 455 GeV: the fit's m_pole within 5 of its ~1.6 GeV errors
    m_pole = float(re.search(r"m_pole\s+([\d.]+) \+-", out).group(1))
    assert abs(m_pole - 455.0) < 8.0
    assert float(re.search(r"significance at the fitted masses: ([\d.]+)", out).group(1)) > 5


def test_every_page_the_readme_links_exists():
    links = re.findall(r"\]\(((?:docs/)?[\w/.-]+\.md)\)", README)
    assert len(set(links)) >= 12
    for link in links:
        assert (ROOT / link).exists(), link
    for page in (ROOT / "docs").glob("*.md"):
        for link in re.findall(r"\]\(([\w.-]+\.md)\)", page.read_text()):
            assert (ROOT / "docs" / link).exists(), f"{page.name} -> {link}"
