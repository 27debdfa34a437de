"""Binary upgrade under load: SIGUSR2 starts a new master (nginx re-executes itself), SIGWINCH
stops the old workers, SIGQUIT the old master. Nothing is lost and the new master serves.
nginx re-executes itself only when it was started by absolute path and daemonized (with
`daemon off` and its parent alive it refuses; started by bare name its execve fails), so
this nginx runs daemonized and is followed through its pid file (nginx.pid, .oldbin)."""

import os
import signal

from tests import harness
from tests.harness import TestFailure, expect, note

from tests.operations import ops


def wait_or_fail(fn, what):
    value = harness.wait_for(fn, ops.WAIT, 0.02)
    if not value:
        raise TestFailure("%s within %ds" % (what, ops.WAIT))
    return value


def test_binary_upgrade_under_load():
    layout = ops.Layout(ops.scratch())
    with ops.nginx_for(layout, workers=2, daemon=True) as ng:
        expect(os.path.isabs(harness.NGINX), "nginx is not started by absolute path: %s", harness.NGINX)
        old_master = ng.master
        old = ng.wait_workers()
        oldbin = ng.pid_file + ".oldbin"
        with ops.Load(ng.ports["tls"], layout.targets(), full=3, keepalive=1) as load:
            for pid in old:
                expect(load.wait(lambda r, pid=pid: r.pid == pid), "worker %d served nothing", pid)
            ng.signal(signal.SIGUSR2, old_master)
            new_master = wait_or_fail(lambda: ops.read_pid(ng.pid_file) not in (None, old_master)
                                      and ops.read_pid(ng.pid_file), "no new master in the pid file")
            expect(ops.read_pid(oldbin) == old_master, "nginx.pid.oldbin holds %s, not the old master %d",
                   ops.read_pid(oldbin), old_master)
            new = ng.wait_workers(master=new_master)
            for pid in new:  # both generations accept now; the new one must serve
                expect(load.wait(lambda r, pid=pid: r.pid == pid), "new worker %d served nothing", pid)
            ng.signal(signal.SIGWINCH, old_master)
            wait_or_fail(lambda: all(ops.gone(p) for p in old), "the old workers did not exit after SIGWINCH")
            mark = load.count()
            expect(load.wait(lambda r: True, 600, mark), "nothing served after SIGWINCH")
            ng.signal(signal.SIGQUIT, old_master)
            wait_or_fail(lambda: ops.gone(old_master), "the old master did not exit after SIGQUIT")
            wait_or_fail(lambda: not os.path.exists(oldbin), "nginx.pid.oldbin was not removed")
            mark = load.count()
            expect(load.wait(lambda r: True, 600, mark), "nothing served after the old master quit")
        after = load.since(mark)
        note("%s; old master %d -> new master %d; %d responses after the old master quit, from %s",
             load.summary(), old_master, new_master, len(after), sorted(set(r.pid for r in after)))
        ops.expect_clean(load, layout.check)
        stray = sorted(set(r.pid for r in after) - set(new))
        expect(not stray, "after the old master quit, responses came from %s, not the new workers %s", stray, new)
        expect(ng.master == new_master and not ops.gone(new_master), "the new master %d is not running", new_master)
        expect(sorted(ng.workers()) == sorted(new), "new master's workers %s, expected %s", ng.workers(), new)
