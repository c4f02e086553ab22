"""World: generation-tagged ids, tick-boundary spawn/despawn, growth, snapshot."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameserver.schema import F, WorldSchema
from gameserver.world import GEN_BITS, World

SCHEMA = WorldSchema(
    {
        "x": F.float32(quant=0.01, lo=-5000, hi=5000),
        "y": F.float32(quant=0.01, lo=-5000, hi=5000),
        "hp": F.uint8(default=100),
        "owner": F.player(),
        "on": F.bool_(),
    }
)


def test_spawn_is_visible_after_commit_only() -> None:
    w = World(SCHEMA)
    ids = w.spawn(3, x=[1.0, 2.0, 3.0], owner=7)
    slots = w.slots_of(ids)
    assert (slots >= 0).all() and w.count == 0 and len(w.alive_slots()) == 0
    w["hp"][slots[1]] = 5  # writable before commit
    assert len(w.snapshot()) == 0
    w.commit()
    snap = w.snapshot()
    assert snap.ids.tolist() == sorted(ids.tolist())
    assert snap.columns["x"].tolist() == [100, 200, 300]
    assert snap.columns["hp"].tolist() == [100, 5, 100]
    assert snap.columns["owner"].tolist() == [7, 7, 7]
    assert snap.columns["on"].dtype == np.uint8


def test_despawn_takes_effect_at_commit_and_ids_go_stale() -> None:
    w = World(SCHEMA)
    ids = w.spawn(4)
    w.commit()
    assert w.despawn(ids[[1, 2, 2]]) == 2
    assert w.count == 4 and (w.slots_of(ids) >= 0).all()  # still alive until commit
    w.commit()
    assert w.count == 2
    assert w.slots_of(ids).tolist()[1:3] == [-1, -1]
    assert w.despawn(ids[1]) == 0  # stale: ignored
    # Reuse: lowest free slot first, new generation, the old id stays stale.
    new = w.spawn(1)
    assert int(new[0]) >> GEN_BITS == int(ids[1]) >> GEN_BITS
    assert int(new[0]) != int(ids[1])
    assert w.slots_of(ids[1:2]).tolist() == [-1]
    assert w.slots_of(new).tolist() == [int(ids[1]) >> GEN_BITS]


def test_despawn_of_pending_spawn_cancels_it() -> None:
    w = World(SCHEMA)
    ids = w.spawn(2)
    w.despawn(ids[0])
    w.commit()
    assert w.ids.tolist() == [int(ids[1])]
    assert w.slots_of(ids).tolist()[0] == -1


def test_generation_cycles_1_to_255_never_0() -> None:
    w = World(SCHEMA, capacity=1)
    gens = []
    for _ in range(600):
        (eid,) = w.spawn(1)
        gens.append(int(eid) & 0xFF)
        w.commit()
        w.despawn([eid])
        w.commit()
    assert 0 not in gens
    assert gens[:3] == [1, 2, 3] and gens[254] == 255 and gens[255] == 1
    assert w.capacity == 1


def test_growth_keeps_ids_values_and_slots() -> None:
    w = World(SCHEMA, capacity=2)
    a = w.spawn(2, x=[1.5, -2.5])
    w.commit()
    col_before = w["x"]
    b = w.spawn(5, x=9.0)
    assert w.capacity >= 7
    assert w["x"] is not col_before  # documented: columns are replaced on growth
    w.commit()
    assert w.slots_of(a).tolist() == [0, 1]
    snap = w.snapshot()
    assert snap.ids.tolist() == sorted([*a.tolist(), *b.tolist()])
    assert snap.columns["x"].tolist() == [150, -250, 900, 900, 900, 900, 900]


def test_snapshot_is_a_copy_and_sorted() -> None:
    w = World(SCHEMA)
    ids = w.spawn(10)
    w.commit()
    w.despawn(ids[::3])
    w.commit()
    w.spawn(3)
    w.commit()
    snap = w.snapshot()
    assert (np.diff(snap.ids.astype(np.int64)) > 0).all()
    w["hp"][w.alive_slots()] = 1
    assert (snap.columns["hp"] == 100).all()
    assert snap.ids.dtype == np.uint32


def test_slots_of_garbage_ids() -> None:
    w = World(SCHEMA)
    w.spawn(2)
    w.commit()
    bad = np.array([0, -1, 2**32, 2**40, (1000 << 8) | 1, 1 << 8], dtype=np.int64)
    assert w.slots_of(bad).tolist() == [-1] * 6
    assert w.slots_of(np.zeros(0, np.uint32)).shape == (0,)


def test_spawn_misuse() -> None:
    w = World(SCHEMA)
    with pytest.raises(TypeError, match="nope"):
        w.spawn(1, nope=1)
    with pytest.raises(ValueError, match="x"):
        w.spawn(3, x=[1.0, 2.0])
    with pytest.raises(ValueError):
        w.spawn(-1)
    assert w.spawn(0).shape == (0,)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("spawn"), st.integers(0, 20), st.integers(0, 255)),
        st.tuples(st.just("despawn"), st.integers(0, 2**31), st.integers(0, 100)),
        st.tuples(st.just("write"), st.integers(0, 2**31), st.integers(0, 255)),
        st.tuples(st.just("commit"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=80, deadline=None)
@given(ops)
def test_world_matches_a_dict_model(program: list[tuple[str, int, int]]) -> None:
    w = World(SCHEMA, capacity=1)
    alive: dict[int, int] = {}  # committed id -> hp
    pending: dict[int, int] = {}
    dying: set[int] = set()
    every: list[int] = []
    for op, a, b in program:
        if op == "spawn":
            ids = w.spawn(a, hp=b)
            assert len(set(ids.tolist()) & (set(alive) | set(pending))) == 0
            pending.update(dict.fromkeys(ids.tolist(), b))
            every.extend(ids.tolist())
        elif op == "despawn" and every:
            victims = [every[(a + i) % len(every)] for i in range(b % 5)]
            w.despawn(np.array(victims, np.uint32))
            dying.update(v for v in victims if v in alive or v in pending)
        elif op == "write" and (alive or pending):
            keys = sorted(alive) + sorted(pending)
            target = keys[a % len(keys)]
            w["hp"][w.slots_of([target])] = b
            (alive if target in alive else pending)[target] = b
        elif op == "commit":
            w.commit()
            alive.update(pending)
            pending.clear()
            for d in dying:
                alive.pop(d, None)
            dying.clear()
        snap = w.snapshot()
        assert snap.ids.tolist() == sorted(alive)
        assert snap.columns["hp"].tolist() == [alive[i] for i in sorted(alive)]
        stale = [i for i in every if i not in alive and i not in pending]
        assert (w.slots_of(np.array(stale, np.uint32)) == -1).all()
