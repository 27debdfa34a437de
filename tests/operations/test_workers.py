"""Several worker processes under mTLS load: every worker serves, and every response carries
the chain its client sent and the verify result of its server{}'s CA list."""

from tests import harness
from tests.harness import expect, note

from tests.operations import ops

MIN_RESPONSES = 2000


@harness.cases(two=dict(n=2), four_small_caches=dict(n=4, cache_limits={"ca": 16384, "chain": 2048}))
def test_workers_serve_under_mtls_load(n, cache_limits=None):
    """cache_limits: the module's per-worker caches so small that its 23 CA lists and 2
    client chains do not fit: entries are evicted and built again under load."""
    layout = ops.Layout(ops.scratch())
    with ops.nginx_for(layout, workers=n, cache_limits=cache_limits) as ng:
        workers = ng.wait_workers()
        with ops.Load(ng.ports["tls"], layout.targets(), full=4, keepalive=1) as load:
            # Which worker accepts a connection is the kernel's choice: load goes on until
            # each has served (bounded by ops.WAIT), and at least MIN_RESPONSES.
            harness.wait_for(lambda: load.count() >= MIN_RESPONSES
                             and set(workers) <= set(ops.pids_seen(load.since(0))), ops.WAIT, 0.1)
        seen = ops.pids_seen(load.since(0))
        note("%d workers: %s; per worker: %s", n, load.summary(),
             ", ".join("%s: %d" % kv for kv in sorted(seen.items())))
        cached = {}
        for r in load.since(0):
            ca, chain = (int(x) for x in r.fields["cached"].split("/"))
            old = cached.get(r.pid, (0, 0))
            cached[r.pid] = (max(old[0], ca), max(old[1], chain))
        note("most cache entries seen per worker (CA lists/chains): %s",
             ", ".join("%s: %d/%d" % (pid, *c) for pid, c in sorted(cached.items())))
        ops.expect_clean(load, layout.check)
        if cache_limits:
            expect(max(c[0] for c in cached.values()) < len(layout.hosts),
                   "the small CA-list cache held every list: nothing was evicted")
        expect(set(seen) == set(workers), "responses came from %s, the workers are %s", sorted(seen), workers)
        expect(load.count() >= MIN_RESPONSES, "only %d responses", load.count())
        expect(ng.workers() == workers, "workers changed under load: %s -> %s", workers, ng.workers())
