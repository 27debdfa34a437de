"""A worker killed with SIGKILL under load: the master starts another, no completed response
is wrong, and only connections the dead worker held can fail (each client thread has at
most one connection in flight, so at most one failure per thread)."""

import os
import re
import signal

from tests import harness
from tests.harness import expect, note

from tests.operations import ops


def test_worker_killed_under_load():
    layout = ops.Layout(ops.scratch())
    with ops.nginx_for(layout, workers=2) as ng:
        workers = ng.wait_workers()
        victim = workers[0]
        ng.allow(r"\[alert\].* worker process %d exited on signal 9" % victim)
        with ops.Load(ng.ports["tls"], layout.targets(), full=4, keepalive=2) as load:
            for pid in workers:
                expect(load.wait(lambda r, pid=pid: r.pid == pid), "worker %d served nothing", pid)
            os.kill(victim, signal.SIGKILL)
            now = ng.wait_workers(exclude=[victim])
            replacement = sorted(set(now) - set(workers))
            expect(len(replacement) == 1, "workers after the kill: %s (before: %s)", now, workers)
            expect(load.wait(lambda r: r.pid == replacement[0]),
                   "the replacement worker %d served nothing", replacement[0])
            load.wait(lambda r: True, 1000, load.count())
        note("killed worker %d, replaced by %d: %s", victim, replacement[0], load.summary())
        for e in load.errors:
            note("client failure: %s", e[1])
        wrong = load.wrong(layout.check)
        expect(not wrong, "%d wrong responses:\n  %s", len(wrong), "\n  ".join(wrong[:10]))
        bound = len(load.threads)
        expect(len(load.errors) <= bound, "%d client failures, more than the %d connections in flight",
               len(load.errors), bound)
        expect(ops.gone(victim), "worker %d still exists", victim)
        expect(victim in [int(x) for x in re.findall(r"worker process (\d+) exited on signal 9", ng.log_text())],
               "no log line about worker %d exiting on signal 9", victim)
