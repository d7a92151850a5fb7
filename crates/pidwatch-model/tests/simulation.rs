//! The simulator against the poll results a C probe measured on real
//! kernels, and its error cases.
//!
//! The probe's scenario: the leader creates one thread and calls SYS_exit,
//! the thread execs, then the parent SIGKILLs the new process and reaps it.

use pidwatch_model::{
    ActionError, FdId, OpenError, PidIndex, PidfdKind, Readiness, Rule, Simulation, TaskState,
    ThreadIndex, UserAction, EINVAL, ESRCH,
};

const LEADER: ThreadIndex = ThreadIndex(0);

/// Revents the probe measured at each step of the scenario.
struct Measured {
    leader_exited_process: i16,
    leader_exited_thread: Option<i16>,
    exec_leader_thread: Option<i16>,
    exec_old_tid_thread: Option<i16>,
    killed_process: i16,
    reaped_process: i16,
}

fn run_probe_scenario(rule: Rule, expected: &Measured) {
    let mut sim = Simulation::new(rule);
    let thread = sim.spawn_thread().unwrap();
    let process_fd = sim.open_pidfd(LEADER, PidfdKind::Process).unwrap();
    let thread_fds = if rule.has_thread_pidfd() {
        let leader_fd = sim.open_pidfd(LEADER, PidfdKind::Thread).unwrap();
        let old_tid_fd = sim.open_pidfd(thread, PidfdKind::Thread).unwrap();
        Some((leader_fd, old_tid_fd))
    } else {
        None
    };
    let revents = |sim: &Simulation, fd: FdId| sim.poll(fd).unwrap().revents();

    sim.leader_exit().unwrap();
    assert_eq!(
        revents(&sim, process_fd),
        expected.leader_exited_process,
        "{rule}"
    );
    if let Some((leader_fd, _)) = thread_fds {
        assert_eq!(
            Some(revents(&sim, leader_fd)),
            expected.leader_exited_thread,
            "{rule}"
        );
    }

    sim.exec(thread).unwrap();
    assert_eq!(sim.state().pid_of(thread), Some(PidIndex(0)));
    assert_eq!(sim.state().thread_state(LEADER), Some(TaskState::Released));
    if let Some((leader_fd, old_tid_fd)) = thread_fds {
        assert_eq!(
            Some(revents(&sim, leader_fd)),
            expected.exec_leader_thread,
            "{rule}"
        );
        assert_eq!(
            Some(revents(&sim, old_tid_fd)),
            expected.exec_old_tid_thread,
            "{rule}"
        );
    }

    sim.kill_group().unwrap();
    assert_eq!(revents(&sim, process_fd), expected.killed_process, "{rule}");

    sim.reap().unwrap();
    assert_eq!(revents(&sim, process_fd), expected.reaped_process, "{rule}");
}

#[test]
fn probe_scenario_no_thread_pidfd() {
    let measured = Measured {
        leader_exited_process: 0,
        leader_exited_thread: None,
        exec_leader_thread: None,
        exec_old_tid_thread: None,
        killed_process: 0x1,
        reaped_process: 0x1,
    };
    run_probe_scenario(Rule::NoThreadPidfd, &measured);
}

#[test]
fn probe_scenario_legacy() {
    let measured = Measured {
        leader_exited_process: 0,
        leader_exited_thread: Some(0x1),
        exec_leader_thread: Some(0),
        exec_old_tid_thread: Some(0x11),
        killed_process: 0x1,
        reaped_process: 0x11,
    };
    run_probe_scenario(Rule::Legacy, &measured);
}

#[test]
fn probe_scenario_fixed() {
    let measured = Measured {
        leader_exited_process: 0,
        leader_exited_thread: Some(0),
        exec_leader_thread: Some(0),
        exec_old_tid_thread: Some(0x11),
        killed_process: 0x1,
        reaped_process: 0x11,
    };
    run_probe_scenario(Rule::Fixed, &measured);
}

#[test]
fn exec_by_leader_swaps_nothing() {
    let mut sim = Simulation::new(Rule::Fixed);
    let thread = sim.spawn_thread().unwrap();
    let thread_fd = sim.open_pidfd(thread, PidfdKind::Thread).unwrap();
    let leader_fd = sim.open_pidfd(LEADER, PidfdKind::Thread).unwrap();

    sim.exec(LEADER).unwrap();

    assert_eq!(sim.state().pid_of(LEADER), Some(PidIndex(0)));
    assert_eq!(sim.state().thread_state(thread), Some(TaskState::Released));
    assert_eq!(sim.poll(thread_fd), Ok(Readiness::HANGUP));
    assert_eq!(sim.poll(leader_fd), Ok(Readiness::NONE));
}

#[test]
fn subthread_exit_hangs_up_at_once() {
    for rule in [Rule::Legacy, Rule::Fixed] {
        let mut sim = Simulation::new(rule);
        let thread = sim.spawn_thread().unwrap();
        let fd = sim.open_pidfd(thread, PidfdKind::Thread).unwrap();

        sim.thread_exit(thread).unwrap();

        assert_eq!(sim.poll(fd), Ok(Readiness::HANGUP), "{rule}");
    }
}

#[test]
fn reap_needs_empty_group() {
    let mut sim = Simulation::new(Rule::Fixed);
    sim.spawn_thread().unwrap();
    assert!(matches!(sim.reap(), Err(ActionError::NotReapable { .. })));

    sim.leader_exit().unwrap();
    assert_eq!(
        sim.reap(),
        Err(ActionError::NotReapable {
            leader_state: TaskState::Zombie,
            others: 1
        })
    );
}

#[test]
fn reap_twice_fails() {
    let mut sim = Simulation::new(Rule::Fixed);
    sim.kill_group().unwrap();
    sim.reap().unwrap();
    assert_eq!(sim.reap(), Err(ActionError::AlreadyReaped));
}

#[test]
fn open_errors_match_kernel() {
    let mut sim = Simulation::new(Rule::Fixed);
    let thread = sim.spawn_thread().unwrap();

    let not_leader = sim.open_pidfd(thread, PidfdKind::Process).unwrap_err();
    assert_eq!(not_leader, OpenError::NotLeader(PidIndex(1)));
    assert_eq!(not_leader.errno(), EINVAL);

    sim.thread_exit(thread).unwrap();
    let released = sim.open_pidfd(thread, PidfdKind::Thread).unwrap_err();
    assert_eq!(released, OpenError::ThreadReleased(thread));
    assert_eq!(released.errno(), ESRCH);

    let missing = sim.open_pidfd(ThreadIndex(7), PidfdKind::Thread);
    assert_eq!(missing, Err(OpenError::NoSuchThread(ThreadIndex(7))));

    let mut old = Simulation::new(Rule::NoThreadPidfd);
    let unsupported = old.open_pidfd(LEADER, PidfdKind::Thread).unwrap_err();
    assert_eq!(unsupported.errno(), EINVAL);
}

#[test]
fn zombie_leader_accepts_process_pidfd() {
    let mut sim = Simulation::new(Rule::Legacy);
    sim.spawn_thread().unwrap();
    sim.leader_exit().unwrap();

    let fd = sim.open_pidfd(LEADER, PidfdKind::Process).unwrap();

    assert_eq!(sim.poll(fd), Ok(Readiness::NONE));
}

#[test]
fn invalid_actions_leave_state_unchanged() {
    let mut sim = Simulation::new(Rule::Legacy);
    let thread = sim.spawn_thread().unwrap();
    let before = sim.clone();

    assert_eq!(sim.thread_exit(LEADER), Err(ActionError::IsLeader(LEADER)));
    assert_eq!(
        sim.thread_exit(ThreadIndex(9)),
        Err(ActionError::NoSuchThread(ThreadIndex(9)))
    );
    assert_eq!(sim.poll(FdId(3)), Err(ActionError::NoSuchPidfd(FdId(3))));
    assert!(sim.exec(ThreadIndex(9)).is_err());
    assert_eq!(sim, before);

    sim.thread_exit(thread).unwrap();
    assert!(matches!(
        sim.exec(thread),
        Err(ActionError::NotRunning { .. })
    ));
}

#[test]
fn killed_group_cannot_spawn() {
    let mut sim = Simulation::new(Rule::Fixed);
    sim.kill_group().unwrap();
    assert_eq!(sim.spawn_thread(), Err(ActionError::NoThreadCanAct));
    assert_eq!(sim.kill_group(), Err(ActionError::GroupExiting));
}

#[test]
fn valid_actions_all_succeed() {
    let mut sim = Simulation::new(Rule::Legacy);
    sim.spawn_thread().unwrap();
    sim.open_pidfd(LEADER, PidfdKind::Thread).unwrap();
    sim.leader_exit().unwrap();

    let actions = sim.valid_actions();
    assert!(!actions.contains(&UserAction::Reap));
    assert!(!actions.contains(&UserAction::LeaderExit));
    assert!(actions.contains(&UserAction::Exec {
        thread: ThreadIndex(1)
    }));
    for action in actions {
        assert!(sim.clone().apply(action).is_ok(), "{action} failed");
    }
}
