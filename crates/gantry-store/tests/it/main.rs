//! The store conformance suite: every case runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `GANTRY_TEST_POSTGRES_URL`; each test gets a fresh schema, dropped at the
//! end, so tests run in parallel. Without the variable the PostgreSQL tests fail, on purpose.

mod harness;

mod actions;
mod agents;
mod api_keys;
mod audit;
mod batch;
mod catalog;
mod events;
mod identities;
mod logs;
mod queue;
mod restart;
mod runs;
mod scorecards;
mod secrets;
mod triggers;
mod workflows;

/// Expands one `#[tokio::test]` per case and backend, each with its own database.
macro_rules! conformance {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::harness::TestDb::sqlite().await;
                    crate::$module::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = crate::harness::TestDb::postgres().await;
                    crate::$module::$case(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

conformance! {
    actions::definitions_are_versioned,
    actions::runs_update_by_version_list_and_log,
    audit::every_change_appends_one_event_with_it,
    audit::a_refused_change_leaves_no_event,
    audit::filters_and_pages,
    audit::runs_started_in_a_batch_are_audited,
    audit::the_log_is_append_only,
    audit::sessions_passwords_and_roles,
    workflows::create_replace_and_versions,
    workflows::list_pagination_edges,
    workflows::delete_keeps_history_and_numbering,
    events::insert_and_get,
    events::idempotency_key_returns_first_event,
    events::dedup_key_is_per_trigger,
    events::same_id_twice_returns_first,
    events::concurrent_idempotent_inserts_make_one_event,
    events::events_without_run_and_links,
    runs::create_get_update,
    runs::run_from_event_is_unique,
    runs::steps_and_outputs,
    runs::list_filters_and_pagination,
    runs::runs_in_status_for_recovery,
    logs::append_and_read_after_cursor,
    logs::resent_chunk_is_skipped,
    logs::live_follower_sees_every_chunk_once,
    queue::claim_order_and_availability,
    queue::heartbeat_and_complete,
    queue::expired_lease_puts_job_back_and_refuses_stale_worker,
    queue::concurrent_claims_are_exclusive,
    queue::claims_take_many_from_one_pool_only,
    queue::renewing_extends_every_live_lease_of_a_worker,
    queue::abandoning_a_runs_jobs_ends_them_for_every_claimer,
    queue::an_enqueue_can_be_its_own_claim,
    agents::a_lapsed_lease_is_given_back_to_its_holder_only,
    agents::last_log_seqs_per_step_and_stream_in_a_range,
    agents::agents_seen_by_any_server_are_listed_newest_sighting_kept,
    secrets::put_get_list_delete,
    api_keys::create_find_touch_list_revoke,
    identities::users_teams_members_and_service_accounts,
    identities::workflows_are_owned_by_teams,
    identities::a_read_after_a_write_sees_it,
    triggers::ensure_is_stable_and_marks_move_forward,
    triggers::push_tokens_list_and_revoke,
    batch::thousand_concurrent_events_few_transactions,
    batch::batched_logs_and_a_bad_item_fails_alone,
    batch::batched_run_updates_and_step_changes,
    batch::batched_runs_ordered_writes_and_marks,
    batch::many_events_in_one_batch_first_wins,
    batch::batched_job_enqueues_claims_and_completions,
    batch::a_batch_equals_its_writes_applied_one_by_one,
    restart::data_survives_reopen_and_migrations_are_idempotent,
    catalog::records_round_trip_whole,
    catalog::versions_are_checked_and_a_conflict_stores_nothing,
    catalog::every_change_is_audited_with_its_write,
    catalog::changes_since_a_seq_and_tombstones,
    catalog::the_clock_only_moves_forward,
    catalog::five_thousand_entities_in_one_write,
    catalog::concurrent_writers_commit_in_seq_order,
    scorecards::definitions_of_each_kind_are_apart_versioned_and_audited,
    scorecards::scorecard_rows_and_history,
    scorecards::firings_are_stored_with_their_audit_events,
}

#[tokio::test]
async fn sqlite_open_on_empty_directory_is_fast() {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let store = gantry_store::SqliteStore::open(dir.path().join("gantry.db"))
        .await
        .expect("open");
    let took = started.elapsed();
    eprintln!("SQLite open on an empty directory: {took:?}");
    store.close().await;
    assert!(
        took < std::time::Duration::from_millis(500),
        "open took {took:?}"
    );
}
