//! Writer failover under faults, on real processes over loopback: no acknowledged message is ever
//! lost, and two writers never accept writes at the same time, whatever is killed, paused or cut off.
//!
//! Each test starts its own cluster of five nodes, runs the workload of [`system_tests::workload`]
//! (four users posting to three groups, every message retried with its `client_id` until answered)
//! while [`system_tests::scenario`] breaks and repairs the cluster, then [`system_tests::checker`]
//! reads everything back through every input node and compares it with what was acknowledged.
//! Victims are chosen by role from `/status`, so a tree that does not allow a scenario (no interior
//! forwarder, say) is replaced a few times and then the scenario is skipped with the reason printed.
//! Timings are printed (run with `--no-capture` to see them), never asserted.

use system_tests::scenario::{Scenario, run_on_new_cluster};

const NODES: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_fault_every_acknowledged_message_is_stored_once_in_the_same_order_everywhere() {
    run_on_new_cluster(Scenario::NoFault, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_and_restarted_loses_nothing_and_catches_up() {
    run_on_new_cluster(Scenario::KillReplica, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_is_replaced_and_rejoins_without_bringing_back_its_lost_tail() {
    run_on_new_cluster(Scenario::KillWriter, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_interior_forwarder_is_healed_around_without_losing_a_message() {
    run_on_new_cluster(Scenario::KillForwarder, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_input_node_leaves_the_nameserver_and_its_clients_move_on() {
    run_on_new_cluster(Scenario::KillInput, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_paused_beyond_the_leader_timeout_is_replaced_and_steps_down_when_resumed() {
    run_on_new_cluster(Scenario::PauseWriter, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_isolated_in_a_minority_of_one_stops_and_the_majority_takes_over() {
    run_on_new_cluster(Scenario::IsolateWriter, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_three_split_keeps_writes_on_the_side_with_a_majority_of_the_voters_writer_on_the_two_side()
 {
    run_on_new_cluster(Scenario::SplitWriterWithTwo, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_three_split_keeps_writes_on_the_side_with_a_majority_of_the_voters_writer_on_the_three_side()
 {
    run_on_new_cluster(Scenario::SplitWriterWithThree, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_node_loses_nothing() {
    run_on_new_cluster(Scenario::RollingRestart, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restart_of_the_cluster_keeps_every_acknowledged_message() {
    run_on_new_cluster(Scenario::FullRestart, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_database_was_deleted_gets_a_full_copy_again() {
    run_on_new_cluster(Scenario::WipeReplica, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_stays_down_is_replaced_by_a_learner_while_writes_go_on() {
    run_on_new_cluster(Scenario::ReplaceVoter, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_majority_of_the_voters_down_writes_are_refused_and_resume_when_one_returns() {
    run_on_new_cluster(Scenario::KillVoterMajority, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_learners_changes_neither_the_writer_nor_the_voters() {
    run_on_new_cluster(Scenario::KillLearners, NODES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_while_a_configuration_change_is_in_flight_loses_nothing() {
    run_on_new_cluster(Scenario::KillWriterMidChange, NODES).await;
}
