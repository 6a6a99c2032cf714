"""What the dashboard keeps is bounded (issue 23, "sessions bounded"): per-sample arrays shared by sessions stop at
a byte budget, a session's pictures go with the Explorer they were made from, and a session lets its objects
go when its browser disconnects. Server memory over many real sessions: benchmarks/bench_sessions.py."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import torch

from inside_core.cache import BoundedCache, nbytes


# ------------------------------------------------------------------------------------------ nbytes
def test_nbytes_counts_each_block_of_memory_once_and_a_view_as_its_base():
    whole = np.zeros((10, 1000), np.float32)  # 40,000 bytes
    assert nbytes(whole) == 40_000
    assert nbytes(whole[3]) == 40_000  # a row keeps the whole array alive
    assert nbytes([whole, whole[1], {"again": whole[2:4]}]) == 40_000
    tensor = torch.zeros(250, 4)  # 4,000 bytes
    assert nbytes({"t": tensor, "row": tensor[0], "n": np.ones(10, np.uint8)}) == 4_010
    assert nbytes(torch.from_numpy(whole)[0]) == 40_000
    uri = "data:image/jpeg;base64," + "A" * 5000
    assert nbytes((uri, uri, "short")) == len(uri)  # long texts (pictures) count, once
    assert nbytes(None) == 0 and nbytes(3.5) == 0


# ------------------------------------------------------------------------------------------ BoundedCache
def test_bounded_cache_lets_the_least_recently_used_go_past_its_byte_budget(monkeypatch):
    monkeypatch.setenv("INSIDE_LIMIT_SHARED_CACHE_BYTES", str(3 * 4000 + 100))
    cache = BoundedCache("shared_cache_bytes", max_entries=10)
    made = []

    def make(key):
        def build():
            made.append(key)
            return np.full(1000, key, np.float32)  # 4,000 bytes
        return build

    for key in range(3):
        cache.get(key, make(key))
    assert cache.get(0, make(0))[0] == 0  # kept: not made again, and now the most recently used
    cache.get(3, make(3))  # over the budget: 1, the least recently used, goes
    assert 1 not in cache and all(key in cache for key in (0, 2, 3))
    assert made == [0, 1, 2, 3] and cache.total_bytes == 3 * 4000
    monkeypatch.setenv("INSIDE_LIMIT_SHARED_CACHE_BYTES", "100")  # read at each insertion
    big = cache.get(4, make(4))
    assert len(cache) == 1 and 4 in cache and big[0] == 4  # the entry just made stays, alone over the budget


def test_bounded_cache_lets_go_past_its_count_and_lets_its_values_be_freed():
    cache = BoundedCache("shared_cache_bytes", max_entries=2)

    class Value:
        pass

    first = cache.get("a", Value)
    gone = weakref.ref(first)
    del first
    cache.get("b", Value)
    cache.get("c", Value)
    gc.collect()
    assert len(cache) == 2 and gone() is None  # the cache held the only reference, and let it go


def test_bounded_cache_gives_every_thread_the_same_value():
    cache = BoundedCache("shared_cache_bytes", max_entries=4)
    start, got = threading.Barrier(8), []

    def ask():
        start.wait()
        got.append(cache.get("key", lambda: np.zeros(1000)))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and all(value is got[0] for value in got) and len(cache) == 1


# ------------------------------------------------------------------------------------------ a session's pictures
def test_a_sessions_pictures_go_with_the_explorers_it_lets_go(monkeypatch):
    """The pictures the page makes from an Explorer (the display picture, the attention's background, the
    ranked channels) are kept with it: when the session's byte limit lets an Explorer go, they go too, and
    they hold no reference that would keep it (before: three caches of 32 entries each held their Explorer)."""
    from streamlit.testing.v1 import AppTest

    from app import page_state
    from inside_core.explorer import Explorer
    from inside_core.networks import build_model

    model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
    one = Explorer(model, np.zeros((32, 32, 3), np.float32)).nbytes
    # room for two Explorers with their pictures (a 400-pixel display picture: 480,000 bytes) and not for a
    # third beside them (counted when it is made, before its own pictures)
    monkeypatch.setenv("INSIDE_LIMIT_SESSION_BYTES", str(2 * (one + 400 * 400 * 3) + one // 2))

    def page():
        import numpy as np
        import streamlit as st

        from app.loading import ModelEntry, background, display_base, explorer_for
        from app.page_state import session
        from inside_core.networks import build_model

        model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
        for k in range(6):
            image = np.full((32, 32, 3), k / 6, np.float32)
            explorer = explorer_for(ModelEntry("m", "", {}), model, ("image", k), image)
            display_base(explorer, image)
            background(explorer)
        st.text(str(len(session().caches["explorers"])))

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    state = at.session_state[page_state.SESSION_KEY]
    gc.collect()
    kept = list(state.caches["explorers"].values())
    assert at.text[0].value == "2" and len(kept) == 2  # the third one's pictures made it too big
    alive = [obj for obj in gc.get_objects() if isinstance(obj, Explorer) and obj.model is kept[0].model]
    assert set(map(id, alive)) == set(map(id, kept))  # the four let go are gone: nothing else held them
    assert set(map(id, state.derived.keys())) == set(map(id, kept))  # the others' pictures went with them
    assert all("display_base" in state.derived[e] and "background" in state.derived[e] for e in kept)


def test_a_session_that_ends_hands_freed_memory_back(monkeypatch):
    """When the browser disconnects, Streamlit clears the session-scoped caches: the page's Session lets its
    Explorers go and asks for freed memory to be handed back (glibc otherwise keeps it: bench_sessions.py)."""
    from streamlit.runtime import caching
    from streamlit.testing.v1 import AppTest

    from app import page_state

    caching.clear_session_resource_cache("test session id")  # AppTest's one id: earlier tests' sessions go
    asked = []
    monkeypatch.setattr(page_state, "give_back_freed_memory", lambda: asked.append(True))

    def page():
        import numpy as np
        import streamlit as st

        from app.loading import ModelEntry, display_base, explorer_for
        from inside_core.networks import build_model

        model = build_model("encoder_decoder", cond_dim=4, image_size=[32, 32], widths=[4, 4, 8]).eval()
        image = np.zeros((32, 32, 3), np.float32)
        display_base(explorer_for(ModelEntry("m", "", {}), model, ("image", 0), image), image)
        st.text("drawn")

    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    state = at.session_state[page_state.SESSION_KEY]
    [explorer] = state.caches["explorers"].values()
    gone = weakref.ref(explorer)
    del explorer
    assert not asked and len(state.derived) == 1
    caching.clear_session_resource_cache("test session id")  # what Streamlit does when the browser goes
    gc.collect()
    assert asked == [True] and gone() is None and len(state.derived) == 0


# ------------------------------------------------------------------------------------------ server-wide
def test_scrubbing_parts_take_turns_across_sessions(monkeypatch):
    """At most `scrub_parts_at_once` parts are made at once, whatever the number of sessions asking."""
    import time

    from app import loading

    monkeypatch.setenv("INSIDE_LIMIT_SCRUB_PARTS_AT_ONCE", "2")
    monkeypatch.setattr(loading, "_TURNS", [])  # the process's turns are made on first use, from the limit
    running, most, lock = [0], [0], threading.Lock()

    def make(part: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return part * 10

    made = [loading.taking_turns(make) for _ in range(6)]  # six sessions' offers
    results = [None] * 6

    def session(k: int) -> None:
        results[k] = made[k](k)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [0, 10, 20, 30, 40, 50] and most[0] == 2


FRAGMENTED = """
import sys, threading
import numpy as np
from inside_core.cache import freed_bytes, trim_freed_memory

def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024

kept = []
def work():  # in a thread: its own malloc arena, as a session's script thread
    blocks = [np.ones(64 * 1024 // 8) for _ in range(2000)]  # 128 MiB in blocks below the mmap threshold
    kept.append(np.ones(64 * 1024 // 8))  # allocated last, kept: the freed blocks are not at the heap's top
    del blocks
thread = threading.Thread(target=work)
thread.start()
thread.join()
before, free = rss(), freed_bytes()
assert trim_freed_memory()
print(before, free, rss())
"""


def test_freed_memory_is_handed_back_to_the_system():
    """What a finished session's thread freed stays in the RSS until it is trimmed; the trim hands it back."""
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    from inside_core.cache import freed_bytes

    if freed_bytes() is None:
        pytest.skip("not glibc: malloc keeps its own policy")
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", FRAGMENTED], capture_output=True, text=True, cwd=repo, timeout=120,
                         env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    before, free, after = map(int, out.stdout.split())
    assert free > 100 * 2**20  # malloc held the freed 128 MiB ...
    assert before - after > 100 * 2**20  # ... in the RSS, until handed back


def test_a_session_that_ends_lets_streamlit_drop_its_pictures(monkeypatch):
    """Streamlit drops a session's media files (st.image) only when it shuts the session down, which a session
    kept for a reconnect never is once it expires: the page drops them when the browser disconnects."""
    from streamlit import runtime
    from streamlit.runtime import Runtime, caching
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.testing.v1 import AppTest

    def page():
        import streamlit as st

        from app.page_state import session

        st.text(session().session_id)

    caching.clear_session_resource_cache("test session id")  # AppTest's one id: earlier tests' sessions go
    at = AppTest.from_function(page).run(timeout=60)
    assert not at.exception, at.exception
    session_id = at.text[0].value
    assert session_id
    media = MediaFileManager(MemoryMediaFileStorage("/media"))
    for picture in (b"\x89PNG this session's", b"\x89PNG another's"):  # as st.image adds them, in two sessions
        media.add(picture, "image/png", f"coordinates-{len(picture)}")
    ours, theirs = list(media._file_metadata)
    media._files_by_session_and_coord = {session_id: {"1": ours}, "another": {"1": theirs}}
    monkeypatch.setattr(Runtime, "_instance", type("Server", (), {"media_file_mgr": media})())
    assert runtime.exists()
    caching.clear_session_resource_cache(session_id)  # the browser goes
    assert list(media._files_by_session_and_coord) == ["another"] and len(media._file_metadata) == 1
