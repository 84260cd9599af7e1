"""experiments.hlo_loops: the loop tree and per-trip operation counts of a compiled program."""

import jax
import jax.numpy as jnp

from experiments.hlo_loops import FREE, loop_tree, opcode


def test_opcode_reads_tuple_types_with_index_comments():
    while_line = (
        "%while.5 = (s32[], f32[4]{0}, /*index=2*/f32[]) while(%tuple.3), condition=%c.1, "
        'body=%body.7, backend_config={"known_trip_count":{"n":"5"}}'
    )
    assert opcode(while_line) == "while"
    assert opcode("ROOT %fusion.2 = f32[4]{0} fusion(%p0, %p1), kind=kLoop, calls=%f.1") == (
        "fusion"
    )
    assert opcode("%constant.1 = f32[] constant(1)") == "constant"
    assert "constant" in FREE and "fusion" not in FREE


def nested(extra_outer_work: bool):
    def inner(c, _):
        return jnp.tanh(c) * 2.0 + jnp.roll(c, 1), None

    def outer(c, _):
        c, _ = jax.lax.scan(inner, c, None, length=3)
        if extra_outer_work:
            c = jnp.sort(jnp.cumsum(c))  # at least one more kernel per outer trip
        return c, None

    def f(x):
        return jax.lax.scan(outer, x, None, length=5)[0]

    return jax.jit(f).lower(jnp.arange(8.0)).compile().as_text()


def test_loop_tree_follows_nesting_and_trip_counts():
    rows = loop_tree(nested(extra_outer_work=False))
    assert [r["depth"] for r in rows] == [0, 1, 2]
    assert [r["trips"] for r in rows] == [1, 5, 3]
    assert all(r["ops_per_trip"] == sum(r["by_kind"].values()) for r in rows)
    assert rows[2]["ops_per_trip"] >= 1


def test_loop_tree_counts_an_outer_loops_own_work_and_not_its_inner_loop():
    plain = loop_tree(nested(extra_outer_work=False))
    more = loop_tree(nested(extra_outer_work=True))
    assert more[1]["ops_per_trip"] > plain[1]["ops_per_trip"]
    assert more[1]["by_kind"].get("sort", 0) == 1 and "sort" not in plain[1]["by_kind"]
    assert more[2]["ops_per_trip"] == plain[2]["ops_per_trip"]
