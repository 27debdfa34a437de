"""Reloads (SIGHUP) under load: every handshake and request goes on, new workers serve,
memory stays bounded; a reload with an edited CA file serves the new list only."""

import signal
import time

from tests import harness
from tests.harness import clients
from tests.harness import TestFailure, expect, expect_eq, note

from tests.operations import ops

RELOADS = 20


def reload_once(ng, load, old):
    """SIGHUP; returns the new workers once each has served and every old one has exited."""
    mark = load.count()
    ng.signal(signal.SIGHUP)
    new = ng.wait_workers(exclude=old)
    for pid in new:
        if not load.wait(lambda r, pid=pid: r.pid == pid, 1, mark):
            raise TestFailure("new worker %d served nothing within %ds (%s)" % (pid, ops.WAIT, load.summary()))
    if not harness.wait_for(lambda: all(ops.gone(p) for p in old), ops.WAIT, 0.05):
        raise TestFailure("old workers %s still running %ds after the reload: %s"
                          % (old, ops.WAIT, [ops.title(p) for p in old if not ops.gone(p)]))
    return new


def reloads(layout, variant):
    """RELOADS reloads under load; returns the load and the RssAnon (KiB) of the master and
    of the largest worker before the first reload and after each."""
    with ops.nginx_for(layout, variant, workers=2) as ng:
        master = ng.master
        current = ng.wait_workers()
        master_rss, worker_rss = [], []
        start = time.monotonic()
        with ops.Load(ng.ports["tls"], layout.targets(), full=3, keepalive=2) as load:
            for pid in current:
                expect(load.wait(lambda r, pid=pid: r.pid == pid), "worker %d served nothing", pid)
            load.wait(lambda r: True, 100)
            master_rss.append(ops.rss_kib(master))
            worker_rss.append(max(ops.rss_kib(p) for p in current))
            for _ in range(RELOADS):
                current = reload_once(ng, load, current)
                expect(load.wait(lambda r: r.pid in current, 100, load.count()),  # the same traffic each time
                       "the new workers %s served fewer than 100 responses in %ds", current, ops.WAIT)
                master_rss.append(ops.rss_kib(master))
                worker_rss.append(max(ops.rss_kib(p) for p in current))
        note("%s: %d reloads in %.0fs: %s", variant, RELOADS, time.monotonic() - start, load.summary())
        note("%s: master RssAnon KiB %s", variant, master_rss)
        note("%s: worker RssAnon KiB %s", variant, worker_rss)
    return load, master_rss, worker_rss


def test_reloads_under_load():
    layout = ops.Layout(ops.scratch())
    load, master, worker = reloads(layout, "module")
    ops.expect_clean(load, layout.check)
    ctl_load, ctl_master, ctl_worker = reloads(layout, "stock")
    ops.expect_clean(ctl_load, layout.check_stock)
    # Each master grows by a few hundred KiB at the first reload, with or without the
    # module (nginx's own cycle); what the module adds must stay within a small margin.
    slack_master, slack_worker = 256, 512
    grown, ctl_grown = master[-1] - master[0], ctl_master[-1] - ctl_master[0]
    note("master growth over %d reloads: %+d KiB (control without the module %+d KiB), after "
         "the first reload %+d KiB (control %+d KiB); last worker vs first: %+d KiB (control %+d KiB)",
         RELOADS, grown, ctl_grown, master[-1] - master[1], ctl_master[-1] - ctl_master[1],
         worker[-1] - worker[0], ctl_worker[-1] - ctl_worker[0])
    expect(grown <= ctl_grown + slack_master,
           "master grew %d KiB over %d reloads, the control %d KiB (margin %d)", grown, RELOADS,
           ctl_grown, slack_master)
    expect(master[-1] - master[1] <= ctl_master[-1] - ctl_master[1] + slack_master,
           "master grew %d KiB after the first reload, the control %d KiB (margin %d)",
           master[-1] - master[1], ctl_master[-1] - ctl_master[1], slack_master)
    expect(worker[-1] - worker[0] <= ctl_worker[-1] - ctl_worker[0] + slack_worker,
           "the last workers grew %d KiB over the first ones, the control's %d KiB (margin %d)",
           worker[-1] - worker[0], ctl_worker[-1] - ctl_worker[0], slack_worker)


def test_reload_with_edited_ca_file():
    """The CA file that init_by_lua reads is edited (int + root -> other root), then nginx is
    reloaded under load. A connection accepted after every old worker stopped accepting is
    served by a new worker, and every connection a new worker serves hints and verifies
    against the new list; the other server{}s keep theirs."""
    p = harness.pki()
    layout = ops.Layout(ops.scratch())
    old_exp = layout.expect
    new_exp = dict(old_exp)
    for who in ops.CLIENTS:
        new_exp[("a.test", who)] = ops.expectation("a", "a", [p.other_root], who, generation="2")
    with ops.nginx_for(layout, workers=2) as ng:
        old = ng.wait_workers()
        port = ng.ports["tls"]
        targets = [t for t in layout.targets() if t[0] in ("a.test", "b.test", "k1.many.test")]
        with ops.Load(port, targets, full=3, keepalive=1) as load:
            before = clients.s_client(port, "a.test", client=p.good)
            expect_eq(before.ca_names, [p.int.subject, p.root.subject], "CA names before the reload")
            expect(load.wait(lambda r: r.host == "a.test", 20), "a.test served fewer than 20 responses")
            ops.write_ca_file(layout.files["a"], [p.other_root], generation="2")
            ng.signal(signal.SIGHUP)
            new = ng.wait_workers(exclude=old)
            # From the first moment no old worker accepts (each one "is shutting down" or gone),
            # every connection lands on a new worker.
            expect(harness.wait_for(lambda: not set(ng.workers()) & set(old), ops.WAIT, 0.01),
                   "old workers %s still accept connections %ds after the reload", old, ops.WAIT)
            switched = time.monotonic()
            after = {who: clients.s_client(port, "a.test", client=ops.client_cert(who))
                     for who in ("good", "unknown")}
            expect(load.wait(lambda r: r.host == "a.test" and r.opened > switched, 60),
                   "a.test served fewer than 60 connections opened after the switch")
        note("%s; a.test: %d responses from the old workers, %d from the new ones (%d from "
             "connections opened after the switch)", load.summary(),
             sum(1 for r in load.since(0) if r.host == "a.test" and r.pid in old),
             sum(1 for r in load.since(0) if r.host == "a.test" and r.pid in new),
             sum(1 for r in load.since(0) if r.host == "a.test" and r.opened > switched))

        def check(r):
            if r.pid in old:
                if r.opened > switched:
                    return "connection opened after every old worker stopped accepting, served by old worker %d" % r.pid
                return ops.mismatch(r.fields, old_exp[(r.host, r.who)])
            if r.pid in new:
                return ops.mismatch(r.fields, new_exp[(r.host, r.who)])
            return "served by %s, neither an old worker %s nor a new one %s" % (r.pid, old, new)
        ops.expect_clean(load, check)
        for who, s in after.items():
            expect_eq(s.ca_names, [p.other_root.subject], "CA names after the reload (%s client)" % who)
            problem = ops.mismatch(s.report, new_exp[("a.test", who)])
            expect(problem is None, "s_client with the %s client after the reload: %s", who, problem)
            expect(int(s.report["worker"]) in new, "s_client served by %s, not a new worker %s",
                   s.report["worker"], new)
