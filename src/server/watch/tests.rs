use super::*;

async fn expect_change(watch: &mut FileWatch, want: &[usize]) {
    let got = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("change noticed within 10 s");
    assert_eq!(got, want);
}

#[tokio::test]
async fn sees_atomic_rename_and_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    std::fs::write(&a, "one").unwrap();
    // ConfigMap layout: b.yaml -> ..data/b.yaml, ..data -> ..v1
    std::fs::create_dir(dir.path().join("..v1")).unwrap();
    std::fs::write(dir.path().join("..v1/b.yaml"), "one").unwrap();
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/b.yaml", dir.path().join("b.yaml")).unwrap();

    let mut watch = FileWatch::new(
        vec![a.clone(), dir.path().join("b.yaml")],
        Duration::from_secs(3600),
        Duration::from_millis(50),
    );

    let tmp = dir.path().join(".a.tmp");
    std::fs::write(&tmp, "two").unwrap();
    std::fs::rename(&tmp, &a).unwrap();
    expect_change(&mut watch, &[0]).await;

    std::fs::create_dir(dir.path().join("..v2")).unwrap();
    std::fs::write(dir.path().join("..v2/b.yaml"), "two").unwrap();
    std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    expect_change(&mut watch, &[1]).await;
}

#[tokio::test]
async fn periodic_check_works_without_events() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, "one").unwrap();
    let mut watch = FileWatch::new(
        vec![a.clone()],
        Duration::from_millis(100),
        Duration::from_millis(50),
    );
    // Stop the event source to prove the periodic path alone suffices.
    watch._watcher = None;
    std::fs::remove_file(&a).unwrap();
    expect_change(&mut watch, &[0]).await;
    std::fs::write(&a, "back").unwrap();
    expect_change(&mut watch, &[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_in_the_directory_do_not_delay_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, "one").unwrap();
    std::fs::write(&b, "other").unwrap();
    let mut watch = FileWatch::new(
        vec![a.clone()],
        Duration::from_secs(3600),
        Duration::from_millis(100),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = std::thread::spawn({
        let (stop, a, b) = (stop.clone(), a.clone(), b.clone());
        move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::read(&a);
                let _ = std::fs::read(&b);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let tmp = dir.path().join("a.tmp");
    std::fs::write(&tmp, "two").unwrap();
    std::fs::rename(&tmp, &a).unwrap();
    let started = Instant::now();
    expect_change(&mut watch, &[0]).await;
    // The burst cap is 20 x 100 ms; without filtering reads it is hit.
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
}

#[test]
fn only_events_naming_a_watched_file_are_relevant() {
    use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
    let names: BTreeSet<OsString> = ["tls.crt", "policy.yaml"].map(OsString::from).into();
    let event = |kind: EventKind, paths: &[&str]| {
        let mut event = notify::Event::new(kind);
        for p in paths {
            event = event.add_path(PathBuf::from(p));
        }
        event
    };
    let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
    let created = EventKind::Create(CreateKind::Any);
    assert!(relevant(&event(write, &["/certs/tls.crt"]), &names));
    assert!(relevant(
        &event(renamed, &["/certs/.tls.tmp", "/certs/tls.crt"]),
        &names
    ));
    assert!(relevant(
        &event(renamed, &["/cm/..data_tmp", "/cm/..data"]),
        &names
    ));
    assert!(relevant(
        &event(created, &["/cm/..2026_11_27_03_00_00.1"]),
        &names
    ));
    assert!(
        relevant(&event(EventKind::Other, &[]), &names),
        "rescan/overflow"
    );
    assert!(!relevant(&event(write, &["/certs/h2load.log"]), &names));
    assert!(!relevant(&event(created, &["/certs/tls.crt.bak"]), &names));
    assert!(!relevant(&event(created, &["/certs/.tls.crt"]), &names));
    let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
    assert!(!relevant(&event(read, &["/certs/tls.crt"]), &names));
    let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
    assert!(relevant(&event(closed, &["/certs/tls.crt"]), &names));
}

#[tokio::test]
async fn unrelated_entries_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, "one").unwrap();
    let mut watch = FileWatch::new(
        vec![a.clone()],
        Duration::from_secs(3600),
        Duration::from_millis(20),
    );
    std::fs::write(dir.path().join("other"), "x").unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), watch.changed()).await;
    assert!(quiet.is_err(), "an unrelated file must not report a change");
}
