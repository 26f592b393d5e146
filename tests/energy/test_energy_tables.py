"""Energy tables hold the published figures and scale by the stated rule."""
import pytest

from spikemllm.energy.tables import HOROWITZ_45NM, TABLE_28NM, get_table, int_add_pj, scale_table


def test_horowitz_45nm_figures():
    t = HOROWITZ_45NM
    assert t.op("mac_fp32") == pytest.approx(4.6) and t.op("ac_fp32") == pytest.approx(0.9)
    assert (t.op("mult_fp16"), t.op("add_fp16"), t.op("mult_int8"), t.op("add_int8")) == (1.1, 0.4, 0.2, 0.03)
    assert t.mem("sram_8kb") == pytest.approx(10 / 8) and t.mem("sram_1mb") == pytest.approx(100 / 8)
    assert t.mem("hbm2") == pytest.approx(3.97 * 8)
    assert all(t.source(k) for k in list(t.ops) + list(t.memory))


def test_28nm_rule_scales_logic_and_sram_not_offchip():
    k = 28 / 45
    assert TABLE_28NM.op("mac_fp16") == pytest.approx(1.5 * k)
    assert TABLE_28NM.mem("sram_32kb") == pytest.approx(2.5 * k)
    assert TABLE_28NM.mem("hbm2") == HOROWITZ_45NM.mem("hbm2")
    low_v = scale_table(HOROWITZ_45NM, 28, 0.45)
    assert low_v.op("add_int32") == pytest.approx(0.1 * k / 4)
    assert get_table("28nm") is TABLE_28NM
    with pytest.raises(KeyError):
        get_table("7nm")
    with pytest.raises(KeyError):
        TABLE_28NM.op("mac_fp64")


def test_int_add_interpolates_between_published_widths():
    assert int_add_pj(8) == pytest.approx(0.03) and int_add_pj(32) == pytest.approx(0.1)
    assert int_add_pj(24) == pytest.approx(0.075) and int_add_pj(64) == pytest.approx(0.2)
    assert int_add_pj(4) == pytest.approx(0.015)
