"""reasonrank.gc_pause: the collector paused for a bulk import and restored as the caller left it."""

from __future__ import annotations


def test_paused_gc_restores_the_collector_and_nests():
    import gc

    from reasonrank.gc_pause import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block did not turn it back on early
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it stays as the caller left it
    finally:
        gc.enable()
