"""``infphys.cli._tables``: the titled column table and the quantity/value table every command
prints."""

from __future__ import annotations

from rich.console import Console

from infphys.cli._tables import column_table, quantity_table


def _render(table: object) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_text_columns_go_left_and_numbers_right() -> None:
    t = column_table("Fleets", ("fleet", "GPUs", "$/h"), text=("fleet",))
    assert [c.header for c in t.columns] == ["fleet", "GPUs", "$/h"]
    assert [c.justify for c in t.columns] == ["left", "right", "right"]
    assert t.title == "Fleets" and t.title_justify == "left"
    assert not any(c.no_wrap for c in t.columns)
    assert all(c.no_wrap for c in column_table("c", ("key", "GB"), no_wrap=True).columns)


def test_a_right_aligned_number_ends_at_its_column_edge() -> None:
    t = column_table("t", ("name", "GB/s"), text=("name",))
    t.add_row("h100", "3,350")
    t.add_row("a100-80gb", "2,039")
    lines = _render(t).splitlines()
    # "h100" starts where "a100-80gb" starts; "3,350" ends where "2,039" ends.
    row_h100 = next(line for line in lines if "h100" in line)
    row_a100 = next(line for line in lines if "a100-80gb" in line)
    assert row_h100.index("h100") == row_a100.index("a100-80gb")
    assert row_h100.index("3,350") == row_a100.index("2,039")


def test_quantity_table_has_no_header_and_one_line_per_row() -> None:
    t = quantity_table("KV cache", [("per token", "128 KiB"), ("users that fit", "412")])
    assert not t.show_header and t.row_count == 2
    text = _render(t)
    assert text.splitlines()[0].strip() == "KV cache"
    assert "per token" in text and "128 KiB" in text and "quantity" not in text


def test_cells_show_numbers_with_separators_and_a_dash_for_none() -> None:
    from infphys.cli._tables import fmt, fmt_ms

    assert fmt(1674.2, 0) == "1,674"
    assert fmt(0.1064, 3) == "0.106"  # USD per million tokens, as plan-fleet shows it
    assert fmt(0.0592, 1, scale=1e3) == "59.2"  # an ITL of 59.2 ms
    assert fmt(None) == fmt(float("nan"), 3, scale=1e3) == "—"
    assert fmt("n/a") == "n/a"
    assert fmt_ms(0.0345) == "34.5" and fmt_ms(1.6742) == "1,674" and fmt_ms(None) == "—"
