"""The key table without curses: each key's handler, what it changes and
the reaction it returns; the help made from the table."""

import sys

import pytest

from flowtop import cli
from flowtop.views import keys as kt
from flowtop.views.state import ViewState
from tests.viewutil import Indexed


class Row:
    def __init__(self, key, label=None):
        self.key, self.label = key, label


def ui_of(*argv, rows=10):
    ui = kt.Ui(ViewState(cli.parse(list(argv))))
    ui.show([Row(i, "g%d" % i) for i in range(rows)])
    return ui


def press(ui, *keys):
    return [kt.dispatch(ui, k) for k in keys]


def test_the_key_table_imports_no_curses():
    assert "curses" not in vars(kt)
    code = "import sys, flowtop.views.keys; print('curses' in sys.modules)"
    import subprocess
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cursor_keys_move_the_selection_and_only_redraw():
    ui = ui_of()
    assert press(ui, "KEY_DOWN", "j", "d") == [kt.REDRAW] * 3
    assert (ui.selected, ui.selected_key) == (3, 3)
    assert press(ui, "KEY_UP", "k") == [kt.REDRAW] * 2 and ui.selected == 1
    ui.page = 4
    press(ui, "KEY_NPAGE")
    assert ui.selected == 5
    press(ui, "KEY_END")
    assert ui.selected == 9
    press(ui, "KEY_DOWN")                     # stops at the last row
    assert ui.selected == 9
    press(ui, "g")
    assert ui.selected == 0


def test_a_new_view_keeps_the_cursor_on_its_row_and_searches_only_when_it_moved():
    """A snapshot of 250k rows where the selected row kept its place (most
    ticks) is not searched for it: ~10-20 ms a tick."""
    class Unsearchable(list):
        def __iter__(self):
            raise AssertionError("searched")

    ui = ui_of()
    press(ui, "KEY_DOWN", "KEY_DOWN")
    rows = [Row(i) for i in range(10)]
    ui.show(Unsearchable(rows))
    assert (ui.selected, ui.selected_key) == (2, 2)
    ui.show(rows[2:])                         # it moved up two
    assert (ui.selected, ui.selected_key) == (0, 2)

    class Counting(list):
        reads = 0

        def __getitem__(self, i):
            self.reads += 1
            return list.__getitem__(self, i)

        def __iter__(self):
            for r in list.__iter__(self):
                self.reads += 1
                yield r

    rows = [Row(i) for i in range(100000)]
    ui.show(rows)
    ui.selected, ui.selected_key = 50000, 50000
    shifted = Counting(rows[3:])              # a flood's tick: three rows before it left
    ui.show(shifted)
    assert (ui.selected, ui.selected_key) == (49997, 50000) and shifted.reads < 200
    ui.show(Counting(rows[::-1]))             # anywhere else: found still
    assert (ui.selected, ui.selected_key) == (49999, 50000)


def test_a_row_a_sort_moved_far_is_found_without_a_python_step_per_row():
    """A sort key at 250k rows moves the cursor's row anywhere: reading each
    row in Python to find it cost ~28 ms of the press (~20 in C)."""
    ui = ui_of()
    rows = [Row(i) for i in range(100000)]
    ui.show(rows)
    ui.selected, ui.selected_key = 10, 10
    moved = Indexed(rows[::-1])
    ui.show(moved)
    assert (ui.selected, ui.selected_key) == (99989, 10) and moved.reads < 200
    ui.show(Indexed(rows[:5]))                # gone: the nearest place, clamped
    assert (ui.selected, ui.selected_key) == (4, 4)


def test_a_sort_of_the_same_rows_finds_the_cursors_row_without_reading_their_keys():
    """An 'o' press re-orders the rows it showed: the cursor's row is the
    same object, found by identity (each row's key read in C was 20-30 ms
    of the press at 250k rows, the rows scattered in memory)."""
    class Keyed:
        reads = 0

        def __init__(self, key):
            self._key = key

        @property
        def key(self):
            Keyed.reads += 1
            return self._key

    ui = ui_of()
    rows = [Keyed(i) for i in range(50000)]
    ui.show(rows)
    ui.selected, ui.selected_key = 10, 10
    Keyed.reads = 0
    ui.show(rows[::-1])
    assert (ui.selected, ui.selected_key) == (49989, 10) and Keyed.reads < 200
    ui.show([Keyed(i) for i in range(50000)])     # new objects (a new snapshot): by key
    assert (ui.selected, ui.selected_key) == (10, 10)


def test_keys_that_change_only_looks_redraw_and_filters_reselect():
    looks = "swiAbBp "
    ui = ui_of()
    before = vars(ui.state).copy()
    assert press(ui, *looks) == [kt.REDRAW] * len(looks)
    changed = {k for k, v in vars(ui.state).items() if before[k] != v}
    assert changed == {"show_src", "wide", "show_id", "age", "bits", "units"}, changed
    for key in "atTU46LorxXP":
        assert press(ui_of(), key) == [kt.RESELECT], key
    assert press(ui_of(), "Z") == [None]       # unbound: nothing to do


def test_every_key_the_looks_keys_change_is_a_field_that_selects_nothing():
    # a REDRAW key must not change what state.which() says decides the rows
    for key in "swiAbBp ":
        ui = ui_of()
        which = ui.state.which()
        press(ui, key)
        assert ui.state.which() == which, key


def test_interval_keys_tell_the_collector_and_stop_at_the_ends():
    ui = ui_of("-t", "1")
    assert press(ui, "+") == [kt.RECOLLECT] and ui.state.interval == 2.0
    press(ui, *"-" * 20)
    assert ui.state.interval == kt.INTERVALS[0]
    press(ui, *"=" * 20)
    assert ui.state.interval == kt.INTERVALS[-1]


def test_sort_key_cycles_the_sort_names_and_r_reverses():
    ui = ui_of()
    assert ui.state.sort == "rate"
    press(ui, "o")
    assert (ui.state.sort, ui.state.reverse) == ("bytes", False)
    press(ui, "r")
    assert ui.state.reverse and ui.state.ascending()


def test_n_toggles_per_name_grouping_in_the_processes_view_only():
    ui = ui_of("--view", "process")
    assert press(ui, "n") == [kt.RESELECT] and ui.state.by_name
    press(ui, "n")
    assert not ui.state.by_name
    flows = ui_of()
    assert press(flows, "n") == [None] and not flows.state.by_name


def test_tab_cycles_the_views_and_shift_tab_goes_back():
    ui = ui_of()
    assert press(ui, "\t") == [kt.RESELECT] and ui.state.view == "process"
    press(ui, "KEY_BTAB", "KEY_BTAB")
    assert ui.state.view == "device"                # the last view (issue 15: devices)


def test_enter_on_a_group_shows_its_flows_and_esc_goes_back_to_it():
    ui = ui_of("--view", "host")
    press(ui, "KEY_DOWN", "KEY_DOWN")
    assert press(ui, "\n") == [kt.RESELECT]
    assert ui.state.view == "flows" and ui.state.group == ("host", 2, "g2")
    assert ui.selected == 0 and ui.mode == "table"
    assert press(ui, "\x1b") == [kt.RESELECT]
    assert ui.state.view == "host" and ui.state.group is None and ui.selected_key == 2


def test_enter_on_a_flow_opens_its_details_where_up_and_down_move_and_q_closes():
    ui = ui_of()
    assert press(ui, "KEY_ENTER") == [kt.REDRAW] and ui.mode == "details"
    press(ui, "KEY_DOWN", "j", "k")
    assert ui.selected == 1 and ui.mode == "details"
    press(ui, "s")                              # other keys do nothing in the pane
    assert not ui.state.show_src
    press(ui, "q")
    assert ui.mode == "table"
    assert press(ui_of(rows=0), "\r") == [None]


def test_help_scrolls_and_closes_on_esc_q_enter_and_question_mark():
    for closer in ("\x1b", "q", "?", "\n"):
        ui = ui_of()
        press(ui, "?")
        assert ui.mode == "help" and ui.help_top == 0
        press(ui, "KEY_DOWN", "KEY_NPAGE", "k")
        assert ui.help_top == 10
        press(ui, closer)
        assert ui.mode == "table", closer


def test_the_filter_prompt_types_printables_erases_and_esc_clears():
    ui = ui_of()
    assert press(ui, "/") == [kt.REDRAW] and ui.mode == "filter"
    assert press(ui, "q", "u", "i", "c", "\x07", "KEY_LEFT") == [kt.RESELECT] * 4 + [None] * 2
    assert ui.state.filter == "quic"                # q is typed, not quit
    press(ui, "KEY_BACKSPACE", "\x7f")
    assert ui.state.filter == "qu"
    press(ui, "\n")
    assert ui.mode == "table" and ui.state.filter == "qu"
    press(ui, "/", *"x" * 300)
    assert len(ui.state.filter) == 200              # room for an expression
    press(ui, "\x1b")
    assert ui.mode == "table" and ui.state.filter == ""


def test_q_quits_from_the_table():
    assert press(ui_of(), "q") == [kt.QUIT]


def test_every_key_is_bound_once_and_every_binding_has_a_help_line():
    keys = kt.table_keys(kt.TABLE)                 # raises on a key bound twice
    assert {"q", "KEY_UP", "o", "r", "/", "+", "?", "\t"} <= set(keys)
    lines = kt.help_lines()
    for b in kt.TABLE:
        assert any(b.label in line and b.text in line for line in lines), b.label
    with pytest.raises(ValueError):
        kt.table_keys(kt.TABLE + (kt.Bind("again", "q twice", ("q", kt.quit_)),))


def test_the_help_names_the_keys_users_know():
    text = "\n".join(kt.help_lines())
    for k in ("PgUp PgDn Home End", "o / r", "T U D I S", "toggle TCP, UDP, DCCP, ICMP, SCTP",
              "4 6", "p or space", "refresh interval", "this help"):
        assert k in text, k


def test_the_cursor_stays_on_its_row_when_the_view_changes():
    ui = ui_of()
    press(ui, "KEY_DOWN", "KEY_DOWN", "KEY_DOWN")
    ui.show([Row(k) for k in (9, 3, 5)])
    assert (ui.selected, ui.selected_key) == (1, 3)
    ui.show([Row(7)])                            # its row is gone: the nearest place
    assert (ui.selected, ui.selected_key) == (0, 7)
    ui.show([])
    assert (ui.selected, ui.selected_key) == (0, None)


def test_enter_keeps_the_filter_prompt_open_while_the_expression_has_a_mistake():
    ui = ui_of()
    press(ui, "/", *"dst=1.2.3")
    press(ui, "\n")
    assert ui.mode == "filter"
    press(ui, *["KEY_BACKSPACE"] * 5, *"10.0.0.0/8", "\n")
    assert ui.mode == "table" and ui.state.filter == "dst=10.0.0.0/8"


def test_w_saves_the_settings_and_says_where(tmp_path):
    ui = ui_of("--rc", str(tmp_path / "rc"))
    assert press(ui, "W") == [kt.REDRAW]
    assert ui.flash == "settings saved to %s" % (tmp_path / "rc")
    assert "view = flows" in (tmp_path / "rc").read_text()


def test_h_toggles_the_history_columns():
    ui = ui_of()
    press(ui, "H")
    assert ui.state.show_history
    press(ui, "H")
    assert not ui.state.show_history
