//! End-to-end web tests over real processes (bootstrap, nameserver and cluster nodes on loopback):
//!
//! * live updates cross input nodes: a `GET /api/events` stream opened on one input node receives a
//!   message posted through another, and a stream resumed with `Last-Event-ID` receives exactly what it
//!   missed;
//! * a real browser: two headless-Chromium sessions (chromedriver + fantoccini) enter through the
//!   nameserver, register, form a group, and a message sent in one page appears in the other without
//!   a reload; then the nameserver's cluster view draws every node (its script runs under the strict
//!   Content-Security-Policy);
//! * a desktop-sized and a phone-sized browser on different input nodes use the chat as people do: a
//!   direct message shows in the sidebar with its unread count, which clears when opened and stays
//!   cleared on another input node; 300 messages page back to the first; an edit, a reply and a
//!   reaction reach the other person live; a search hit opens its conversation at the message; and
//!   the desktop's input node is killed while it holds a draft and a message that fails to send: the
//!   page moves through the nameserver to another node, restores the draft and delivers the message
//!   exactly once (it prints "time to send again after the kill");
//! * the same browser scenario on a cluster that serves HTTPS (certificates from `cluster-certs`, laid
//!   out as `TLS=1 ./init.sh` does): the pages come over `https://` and the session cookie is `Secure`.
//!   Chromium runs with `--ignore-certificate-errors` there, as adding the test CA to its trust store
//!   would need NSS tools on the machine; the CA itself is checked by the test's HTTP clients.
//!
//! Without chromium and chromedriver (looked for at `$CHROMIUM_BIN` and `$CHROMEDRIVER_BIN`, in
//! /usr/bin, then on `PATH`) the browser test prints why and passes, unless `CI` is set: then it fails
//! (`.ci/run` installs them). `SCREENSHOT_DIR`, when set, receives the screenshot of the last page.

use std::path::Path;
use std::time::{Duration, Instant};

use browser_tests::browser::{ChromeDriver, Tools, poll, texts, wait_for};
use browser_tests::inputs::wait_for_inputs;
use browser_tests::pages::{
    CONVERGE, EVENT, PASSWORD, click, enter_through_nameserver, js, register, shown_handle,
    shows_message, type_into,
};
use browser_tests::session::Session;
use browser_tests::sse::Frame;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use system_tests::chat::ChatClient;
use system_tests::cluster::Cluster;

/// Posts `content` to the group as `client`; answers the message.
async fn post_message(client: &ChatClient, group: &str, content: &str) -> Value {
    let posted = client
        .post(
            &format!("/api/groups/{group}/messages"),
            json!({ "content": content }),
        )
        .await;
    assert_eq!(posted.status, 201, "posting {content:?}: {posted:?}");
    posted.body
}

/// Checks that `frame` is the `message` event of `message`: same message, `id:` = its epoch.
fn assert_is_event_of(frame: &Frame, message: &Value) {
    assert_eq!(frame.kind(), "message", "{frame:?}");
    let data = frame.json();
    let epoch = message["epoch"].as_u64().expect("a message has an epoch");
    assert_eq!(data["id"], message["id"], "event {data} for {message}");
    assert_eq!(data["content"], message["content"], "event {data}");
    assert_eq!(data["epoch"], message["epoch"], "event {data}");
    assert_eq!(
        frame.id.as_deref(),
        Some(epoch.to_string().as_str()),
        "the event id is the message's epoch: {frame:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_carries_posts_across_input_nodes_and_resumes_exactly_after_last_event_id() {
    let started = Instant::now();
    let cluster = Cluster::start_in_order(5).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_for_inputs(&cluster, 2, CONVERGE).await;
    let (x, y) = (&inputs[0], &inputs[1]);
    eprintln!(
        "cluster ready in {:?}; ada on node {} ({}), bob on node {} ({})",
        started.elapsed(),
        x.id,
        x.url,
        y.id,
        y.url
    );

    let ada = Session::new(&x.url);
    ada.sign_up("ada").await;
    let bob = ChatClient::new(&y.url);
    let (_, bob_tag) = bob.sign_up("bob").await;
    let (status, group) = ada.post("/api/groups", json!({"name": "crew"})).await;
    assert_eq!(status, 201, "{group}");
    let group = group["id"].as_str().expect("a group id").to_owned();
    let (status, added) = ada
        .post(
            &format!("/api/groups/{group}/members"),
            json!({"username": "bob", "tag": bob_tag}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    // Bob's node learns of the membership through the data plane: wait until it lets him read.
    let messages = format!("/api/groups/{group}/messages");
    poll("bob can read the group on his node", EVENT, || async {
        (bob.get(&messages).await.status == 200).then_some(())
    })
    .await;

    // Live: posted through node Y, streamed on node X.
    let mut stream = ada.events(None).await;
    let sent = Instant::now();
    let first = post_message(&bob, &group, "hello from the other node").await;
    let frame = stream.next_of("message", EVENT).await;
    assert_is_event_of(&frame, &first);
    assert_eq!(frame.json()["sender"]["username"], "bob");
    eprintln!(
        "post on node {} -> event on node {}: {:?}",
        y.id,
        x.id,
        sent.elapsed()
    );
    let last_seen = frame.id.clone().expect("a message event has an id");

    // Ada goes away; Bob posts three messages she misses.
    drop(stream);
    let mut missed = Vec::new();
    for n in 1..=3 {
        missed.push(post_message(&bob, &group, &format!("while you were away {n}")).await);
    }

    // Resumed from the last id she saw: exactly the three, in order, then live again. A sentinel posted
    // after the stream is ready bounds what she reads: everything before it must be the missed three.
    let mut stream = ada.events(Some(&last_seen)).await;
    let sentinel = post_message(&bob, &group, "live again").await;
    let mut received = Vec::new();
    loop {
        let frame = stream.next_of("message", EVENT).await;
        let done = frame.json()["id"] == sentinel["id"];
        received.push(frame);
        if done {
            break;
        }
        assert!(
            received.len() <= missed.len(),
            "more than the missed messages before the sentinel: {received:#?}"
        );
    }
    let expected: Vec<&Value> = missed.iter().chain([&sentinel]).collect();
    assert_eq!(
        received.len(),
        expected.len(),
        "resumed stream: {received:#?}"
    );
    for (frame, message) in received.iter().zip(expected) {
        assert_is_event_of(frame, message);
    }
    eprintln!("sse test took {:?}", started.elapsed());
}

/// Logs out and back in through the login form with `handle` (`name#tag`).
async fn log_out_and_in(browser: &Client, handle: &str) {
    click(browser, "form[action='/logout'] button[type='submit']").await;
    type_into(
        browser,
        "form[action='/login'] input[name='username']",
        handle,
    )
    .await;
    type_into(
        browser,
        "form[action='/login'] input[name='password']",
        PASSWORD,
    )
    .await;
    let sent = Instant::now();
    click(browser, "form[action='/login'] button[type='submit']").await;
    assert_eq!(shown_handle(browser).await, handle, "logged in as");
    eprintln!(
        "{handle}: log in through the page took {:?}",
        sent.elapsed()
    );
}

/// Writes a screenshot of `browser` to `dir/name`, and into `$SCREENSHOT_DIR` when that is set.
async fn screenshot(browser: &Client, dir: &Path, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let path = dir.join(name);
    std::fs::write(&path, &png).expect("the screenshot can be written");
    if let Some(target) = std::env::var_os("SCREENSHOT_DIR") {
        let target = Path::new(&target);
        std::fs::create_dir_all(target).expect("SCREENSHOT_DIR can be created");
        std::fs::copy(&path, target.join(name)).expect("the screenshot can be copied");
        eprintln!("screenshot: {}", target.join(name).display());
    }
}

/// The browser scenario proper, with both sessions open.
async fn two_people_chat(cluster: &Cluster, one: &Client, two: &Client, dir: &Path) {
    let nameserver = format!("{}/", cluster.nameserver_url());
    let base_one = enter_through_nameserver(one, &nameserver).await;
    let base_two = enter_through_nameserver(two, &nameserver).await;
    eprintln!("browser 1 on {base_one}, browser 2 on {base_two}");
    let scheme = cluster.dir.scheme();
    for base in [&base_one, &base_two] {
        assert!(base.starts_with(&format!("{scheme}://")), "{base}");
    }

    let ada = register(one, "ada").await;
    let bob = register(two, "bob").await;
    let session = one
        .get_named_cookie("chat_session")
        .await
        .expect("registering sets the session cookie");
    assert_eq!(
        session.secure().unwrap_or(false),
        scheme == "https",
        "the session cookie is Secure exactly under TLS"
    );
    log_out_and_in(one, &ada).await;
    log_out_and_in(two, &bob).await;
    assert_eq!(one.title().await.expect("the page has a title"), "Chat");
    let favicon = one
        .execute_async(
            "const done = arguments[0]; \
             fetch('/static/favicon.svg').then( \
               (r) => done(r.status + ' ' + r.headers.get('content-type')), \
               (e) => done(String(e)));",
            vec![],
        )
        .await
        .expect("a script runs");
    assert_eq!(favicon, json!("200 image/svg+xml"), "the favicon is served");

    // Ada creates a group from her home page and lands on it.
    type_into(one, "form[action='/groups'] input[name='name']", "Weekend").await;
    click(one, "form[action='/groups'] button[type='submit']").await;
    let group_path = poll("the group page opens", EVENT, || async {
        let url = one.current_url().await.ok()?;
        url.path()
            .starts_with("/groups/")
            .then(|| url.path().to_owned())
    })
    .await;
    wait_for(one, "#chat", EVENT).await;
    assert_eq!(
        one.title().await.expect("the page has a title"),
        "Weekend · Chat"
    );

    // She adds Bob by name and tag from the members panel; the list shows him.
    click(one, "#group-info summary").await;
    type_into(one, "form[action$='/members'] input[name='handle']", &bob).await;
    click(one, "form[action$='/members'] button[type='submit']").await;
    poll("bob is listed as a member", EVENT, || async {
        texts(one, "#members li")
            .await
            .iter()
            .any(|text| text.contains(&bob))
            .then_some(())
    })
    .await;

    // Bob opens the same group on his own input node (his session lives there).
    two.goto(&format!("{base_two}{group_path}"))
        .await
        .expect("the group page opens");
    let title = wait_for(two, "#chat .chat-header h1", EVENT).await;
    assert_eq!(title.text().await.expect("a title"), "Weekend");
    click(two, "#group-info summary").await;
    assert!(
        texts(two, "#members li")
            .await
            .iter()
            .any(|text| text.contains(&ada)),
        "bob sees ada among the members"
    );
    // Ada's page is open, so she is online: her dot is filled on Bob's page (another input node).
    poll("bob's page shows ada online", EVENT, || async {
        let online = js(
            two,
            "return Array.from(document.querySelectorAll('#members li.online'), (li) => li.textContent);",
            vec![],
        )
        .await;
        online
            .as_array()?
            .iter()
            .any(|member| member.as_str().is_some_and(|text| text.contains(&ada)))
            .then_some(())
    })
    .await;
    // A marker that a reload or navigation would wipe out.
    two.execute("window.__stillTheSamePage = true; return true;", vec![])
        .await
        .expect("a script runs");

    // Ada types a message and sends it.
    let text = "See you at the lake at 10!";
    type_into(one, "#composer textarea[name='content']", text).await;
    // While she types, Bob's page says so.
    let (ada_name, _) = ada.rsplit_once('#').expect("name#tag");
    let typing = format!("{ada_name} is typing…");
    poll("bob's page says ada is typing", EVENT, || async {
        let shown = wait_for(two, "#typing", EVENT).await.text().await.ok()?;
        (shown == typing).then_some(())
    })
    .await;
    let sent = Instant::now();
    click(one, "#composer button[type='submit']").await;
    poll("ada's page shows her message", EVENT, || async {
        texts(one, "#messages li.message .content")
            .await
            .iter()
            .any(|shown| shown == text)
            .then_some(())
    })
    .await;

    // It appears in Bob's open page, without reload.
    poll("the message appears in bob's open page", EVENT, || async {
        texts(two, "#messages li.message .content")
            .await
            .iter()
            .any(|shown| shown == text)
            .then_some(())
    })
    .await;
    eprintln!(
        "sent in browser 1 ({base_one}) -> shown in browser 2 ({base_two}): {:?}",
        sent.elapsed()
    );
    // Her message arrived: she is no longer shown typing.
    poll("bob's page stops saying ada is typing", EVENT, || async {
        let shown = wait_for(two, "#typing", EVENT).await.text().await.ok()?;
        shown.is_empty().then_some(())
    })
    .await;
    let same_page = two
        .execute("return window.__stillTheSamePage === true;", vec![])
        .await
        .expect("a script runs");
    assert_eq!(same_page, json!(true), "bob's page was reloaded");
    let senders = texts(two, "#messages li.message .meta .sender").await;
    assert_eq!(senders, vec![ada.clone()], "the sender bob sees");
    assert!(
        wait_for(two, "#messages-empty", EVENT)
            .await
            .attr("hidden")
            .await
            .expect("attributes can be read")
            .is_some(),
        "the 'no messages yet' hint is hidden once a message is there"
    );
    assert!(
        two.find(Locator::Css("#gone"))
            .await
            .expect("the gone notice exists")
            .attr("hidden")
            .await
            .expect("attributes can be read")
            .is_some(),
        "bob is still a member"
    );

    screenshot(two, dir, "browser-bob-group.png").await;
    page_changes_do_not_stall(two, &base_two, &group_path).await;
    a_long_paste_is_kept_and_counted(one).await;
}

/// A message longer than the limit is neither cut nor sent: the box keeps all of it, says how many
/// characters are too many, and sending waits until it fits.
async fn a_long_paste_is_kept_and_counted(browser: &Client) {
    let textarea = wait_for(browser, "#composer textarea[name='content']", EVENT).await;
    textarea.clear().await.expect("the message box clears");
    let long = "é".repeat(4_100);
    textarea
        .send_keys(&long)
        .await
        .expect("the text goes into the message box");
    let kept = browser
        .execute(
            "return Array.from(document.querySelector('#composer textarea').value).length;",
            vec![],
        )
        .await
        .expect("a script runs");
    assert_eq!(kept, json!(4_100), "the message box keeps the whole text");
    let counter = wait_for(browser, "#counter", EVENT).await;
    assert!(
        counter
            .is_displayed()
            .await
            .expect("visibility can be read"),
        "the counter shows near and over the limit"
    );
    let said = counter.text().await.expect("the counter has text");
    assert!(said.contains("100 too many"), "the counter says {said:?}");
    let send = browser
        .find(Locator::Css("#composer button[type='submit']"))
        .await
        .expect("the send button exists");
    assert!(
        !send.is_enabled().await.expect("the state can be read"),
        "a message over the limit cannot be sent"
    );
    textarea.clear().await.expect("the message box clears");
    textarea.send_keys("short").await.expect("text goes in");
    assert!(send.is_enabled().await.expect("the state can be read"));
    assert!(
        !counter
            .is_displayed()
            .await
            .expect("visibility can be read"),
        "far from the limit the counter is hidden"
    );
    textarea.clear().await.expect("the message box clears");
}

/// Twenty page changes as people make them (home, into the group, back, …) each finish within
/// seconds: a page kept in the back/forward cache must not keep its live connection open, or after
/// six of them (Chromium's connections per host) the next page waits about a minute for a free one.
async fn page_changes_do_not_stall(browser: &Client, base: &str, group_path: &str) {
    const CHANGE: Duration = Duration::from_secs(15);
    browser
        .goto(&format!("{base}/"))
        .await
        .expect("the home page opens");
    wait_for(browser, "#chats", EVENT).await;
    let link = format!("#chats a[href='{group_path}']");
    let mut slowest = Duration::ZERO;
    for change in 0..20 {
        let started = Instant::now();
        let into_group = change % 2 == 0;
        let step = async {
            if into_group {
                click(browser, &link).await;
                wait_for(browser, "#chat", CHANGE).await;
            } else {
                browser.back().await.expect("the browser goes back");
                wait_for(browser, "body.view-home #chats", CHANGE).await;
            }
        };
        if tokio::time::timeout(CHANGE, step).await.is_err() {
            panic!(
                "page change {} ({}) took longer than {CHANGE:?}",
                change + 1,
                if into_group {
                    "into the group"
                } else {
                    "back home"
                }
            );
        }
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("20 page changes, the slowest took {slowest:?}");
}

/// The nameserver's cluster view, whose style and script are files its Content-Security-Policy allows
/// (no inline code), draws and lists all `nodes` in a real browser.
async fn the_cluster_view_draws_every_node(cluster: &Cluster, browser: &Client, nodes: usize) {
    browser
        .goto(&format!("{}/cluster", cluster.nameserver_url()))
        .await
        .expect("the cluster view opens");
    poll("the cluster view draws every node", EVENT, || async {
        let drawn = browser
            .find_all(Locator::Css("#graph g.node"))
            .await
            .ok()?
            .len();
        let listed = texts(browser, "#nodes tr").await.len();
        (drawn == nodes && listed == nodes).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_enter_through_the_nameserver_form_a_group_and_see_a_message_live() {
    let test = "two_browsers_enter_through_the_nameserver_form_a_group_and_see_a_message_live";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let started = Instant::now();
    let cluster = Cluster::start_in_order(5).await;
    browser_scenario(&tools, &cluster, &[], started).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_chat_over_https_on_a_cluster_with_certificates() {
    let test = "two_browsers_chat_over_https_on_a_cluster_with_certificates";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let started = Instant::now();
    let cluster = Cluster::start_in_order_over_https(5).await;
    browser_scenario(&tools, &cluster, &["--ignore-certificate-errors"], started).await;
}

/// Two browsers (with `flags` beyond the usual) chat through `cluster`, then look at its cluster view.
async fn browser_scenario(tools: &Tools, cluster: &Cluster, flags: &[&str], started: Instant) {
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_for_inputs(cluster, 2, CONVERGE).await;
    eprintln!(
        "cluster ready in {:?}; input nodes {:?}",
        started.elapsed(),
        inputs.iter().map(|node| node.id).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let driver = ChromeDriver::start(tools, dir.path()).await;
    let profiles = [dir.path().join("profile-1"), dir.path().join("profile-2")];
    for profile in &profiles {
        std::fs::create_dir_all(profile).expect("a profile folder");
    }
    let one = driver.session_with_flags(&profiles[0], flags).await;
    let two = driver.session_with_flags(&profiles[1], flags).await;
    eprintln!("browsers ready after {:?}", started.elapsed());

    let scenario = async {
        two_people_chat(cluster, &one, &two, dir.path()).await;
        the_cluster_view_draws_every_node(cluster, &one, 5).await;
    };
    if tokio::time::timeout(Duration::from_secs(180), scenario)
        .await
        .is_err()
    {
        panic!(
            "the browser scenario did not finish within 180 s; chromedriver log:\n{}",
            driver.log()
        );
    }
    // Ends both sessions (the browsers); dropping the driver kills whatever is left of its group.
    let _ = one.close().await;
    let _ = two.close().await;
    drop(driver);
    eprintln!("browser test took {:?}", started.elapsed());
}

/// Enters through the nameserver until the browser lands on an input node other than `not` (the
/// nameserver hands nodes out in turn); answers that node's origin.
async fn enter_avoiding(browser: &Client, nameserver: &str, not: Option<&str>) -> String {
    for _ in 0..6 {
        let origin = enter_through_nameserver(browser, nameserver).await;
        if Some(origin.as_str()) != not {
            return origin;
        }
    }
    panic!("the nameserver kept sending the browser to {not:?}");
}

/// The sidebar entry whose link goes to `href`, as `[unread, badge hidden]`, or null without one.
const SIDEBAR_ENTRY: &str = "const link = document.querySelector('#chats a[href=\"' + arguments[0] + '\"]'); \
     if (!link) return null; const item = link.closest('li'); \
     return [Number(item.dataset.unread), item.querySelector('.unread').hidden];";

/// Clicks (focuses) the message `content` in `browser` and then its action `action` (`reply`, `edit`,
/// `react`), as a person does: the actions show on a focused message.
async fn act_on(browser: &Client, content: &str, action: &str) -> String {
    let id = js(
        browser,
        "const item = Array.from(document.querySelectorAll('#messages li.message')) \
           .find((node) => node.querySelector('.content').textContent === arguments[0]); \
         return item ? item.id : null;",
        vec![json!(content)],
    )
    .await;
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("no message {content:?} shown"))
        .to_owned();
    click(browser, &format!("#{id} .content")).await;
    click(browser, &format!("#{id} [data-action='{action}']")).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_and_a_phone_on_different_nodes_chat_page_back_search_and_survive_a_node_death() {
    let test =
        "a_desktop_and_a_phone_on_different_nodes_chat_page_back_search_and_survive_a_node_death";
    let Some(tools) = Tools::find_or_skip(test) else {
        return;
    };
    let started = Instant::now();
    let mut cluster = Cluster::start_in_order(5).await;
    cluster.wait_for_tree(&cluster.live_ids(), CONVERGE).await;
    cluster.wait_for_writer(&cluster.live_ids(), CONVERGE).await;
    let inputs = wait_for_inputs(&cluster, 2, CONVERGE).await;
    eprintln!("cluster ready in {:?}", started.elapsed());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let driver = ChromeDriver::start(&tools, dir.path()).await;
    let profiles = [dir.path().join("desktop"), dir.path().join("phone")];
    for profile in &profiles {
        std::fs::create_dir_all(profile).expect("a profile folder");
    }
    let desktop = driver.session(&profiles[0]).await;
    let phone = driver.session(&profiles[1]).await;
    phone
        .set_window_size(390, 844)
        .await
        .expect("the phone window can be resized");

    let scenario = async {
        let nameserver = format!("{}/", cluster.nameserver_url());
        let x = enter_avoiding(&desktop, &nameserver, None).await;
        let y = enter_avoiding(&phone, &nameserver, Some(&x)).await;
        eprintln!("ada (desktop) on {x}, bob (phone) on {y}");
        let ada = register(&desktop, "ada").await;
        let bob = register(&phone, "bob").await;
        let ada_api = Session::new(&x);
        ada_api.log_in(&ada).await;
        let bob_api = Session::new(&y);
        bob_api.log_in(&bob).await;
        let (_, bob_tag) = bob.rsplit_once('#').expect("name#tag");
        let (_, ada_tag) = ada.rsplit_once('#').expect("name#tag");
        let to_bob = format!("/users/bob/{bob_tag}/chat");
        let to_ada = format!("/users/ada/{ada_tag}/chat");

        // (b) A direct message appears in bob's sidebar, counted, and the count clears when he opens it
        // and stays cleared on another input node.
        let step = Instant::now();
        let (status, body) = ada_api
            .post(
                &format!("/api/users/bob/{bob_tag}/messages"),
                json!({"content": "psst bob, are you there?"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        poll(
            "the direct message shows in bob's sidebar with one unread",
            EVENT,
            || async {
                (js(&phone, SIDEBAR_ENTRY, vec![json!(to_ada)]).await == json!([1, false]))
                    .then_some(())
            },
        )
        .await;
        assert_eq!(phone.title().await.expect("a title"), "(1) Chat");
        assert!(
            wait_for(&phone, "#sidebar", EVENT)
                .await
                .is_displayed()
                .await
                .expect("visibility"),
            "the phone's home page is the sidebar"
        );
        click(&phone, &format!("#chats a[href='{to_ada}']")).await;
        wait_for(&phone, "#chat", EVENT).await;
        assert!(
            !phone
                .find(Locator::Css("#sidebar"))
                .await
                .expect("a sidebar")
                .is_displayed()
                .await
                .expect("visibility"),
            "on a phone the conversation is a view of its own"
        );
        poll(
            "bob's count clears once he has the chat open",
            EVENT,
            || async {
                (js(&phone, SIDEBAR_ENTRY, vec![json!(to_ada)]).await == json!([0, true]))
                    .then_some(())
            },
        )
        .await;
        assert_eq!(phone.title().await.expect("a title"), "ada · Chat");
        phone
            .goto(&format!("{x}/"))
            .await
            .expect("the other node opens");
        wait_for(&phone, "body.view-home #chats", EVENT).await;
        assert_eq!(
            js(&phone, SIDEBAR_ENTRY, vec![json!(to_ada)]).await,
            json!([0, true]),
            "on another input node ({x}) the chat is read"
        );
        assert_eq!(phone.title().await.expect("a title"), "Chat");
        phone
            .goto(&format!("{y}{to_ada}"))
            .await
            .expect("the chat opens");
        wait_for(&phone, "#chat", EVENT).await;
        eprintln!(
            "(b) unread in the sidebar, cleared across nodes: {:?}",
            step.elapsed()
        );

        // (c) 300 messages seeded through the API; scrolling up reaches the first.
        let step = Instant::now();
        let (status, group) = ada_api
            .post("/api/groups", json!({"name": "History"}))
            .await;
        assert_eq!(status, 201, "{group}");
        let group = group["id"].as_str().expect("a group id").to_owned();
        let (status, body) = ada_api
            .post(
                &format!("/api/groups/{group}/members"),
                json!({"username": "bob", "tag": bob_tag}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let mut first = Value::Null;
        let mut lighthouse = Value::Null;
        for n in 1..=300 {
            let content = if n == 150 {
                "the old lighthouse on the cape".to_owned()
            } else {
                format!("history {n}")
            };
            let (status, message) = ada_api
                .post(
                    &format!("/api/groups/{group}/messages"),
                    json!({"content": content}),
                )
                .await;
            assert_eq!(status, 201, "{message}");
            if n == 1 {
                first = message;
            } else if n == 150 {
                lighthouse = message;
            }
        }
        eprintln!("(c) seeded 300 messages in {:?}", step.elapsed());
        let step = Instant::now();
        desktop
            .goto(&format!("{x}/groups/{group}"))
            .await
            .expect("the group opens");
        wait_for(&desktop, "#chat", EVENT).await;
        let first_id = format!("m-{}", first["id"].as_str().expect("an id"));
        poll(
            "scrolling up reaches the first message",
            Duration::from_secs(60),
            || async {
                let reached = js(
                    &desktop,
                    "const scroller = document.getElementById('scroller'); scroller.scrollTop = 0; \
                 return Boolean(document.getElementById(arguments[0])) && \
                   !document.getElementById('history-start').hidden;",
                    vec![json!(first_id)],
                )
                .await;
                (reached == json!(true)).then_some(())
            },
        )
        .await;
        let count = js(
            &desktop,
            "return document.querySelectorAll('#messages li.message').length;",
            vec![],
        )
        .await;
        assert_eq!(count, json!(300), "every message once");
        let start = wait_for(&desktop, "#history-start", EVENT).await;
        assert!(
            start
                .text()
                .await
                .expect("text")
                .contains("start of the conversation")
        );
        eprintln!(
            "(c) scrolled back through 300 messages in {:?}",
            step.elapsed()
        );

        // (d) An edit and a reaction by ada, a reply by bob, each seen live by the other.
        let step = Instant::now();
        desktop
            .goto(&format!("{x}{to_bob}"))
            .await
            .expect("the chat opens");
        wait_for(&desktop, "#chat", EVENT).await;
        type_into(
            &desktop,
            "#composer textarea",
            "plans for saturday?\u{E007}",
        )
        .await;
        poll("bob sees ada's question", EVENT, || async {
            shows_message(&phone, "plans for saturday?")
                .await
                .then_some(())
        })
        .await;
        act_on(&desktop, "plans for saturday?", "edit").await;
        type_into(
            &desktop,
            "#messages .editor textarea",
            "plans for sunday?\u{E007}",
        )
        .await;
        poll("bob sees the edit", EVENT, || async {
            let edited = js(
                &phone,
                "return Array.from(document.querySelectorAll('#messages li.message')) \
                   .some((node) => node.querySelector('.content').textContent === 'plans for sunday?' \
                     && node.querySelector('.edited') && node.querySelector('.edited').getClientRects().length > 0);",
                vec![],
            )
            .await;
            (edited == json!(true)).then_some(())
        })
        .await;
        act_on(&phone, "plans for sunday?", "reply").await;
        let replying = wait_for(&phone, "#replying", EVENT).await;
        assert!(
            replying
                .text()
                .await
                .expect("text")
                .contains("plans for sunday?")
        );
        type_into(&phone, "#composer textarea", "count me in\u{E007}").await;
        poll("ada sees bob's reply with its quote", EVENT, || async {
            let quoted = js(
                &desktop,
                "return Array.from(document.querySelectorAll('#messages li.message')) \
                   .some((node) => node.querySelector('.content').textContent === 'count me in' \
                     && (node.querySelector('.quote .quote-text') || {}).textContent === 'plans for sunday?');",
                vec![],
            )
            .await;
            (quoted == json!(true)).then_some(())
        })
        .await;
        let reply_id = act_on(&desktop, "count me in", "react").await;
        click(&desktop, &format!("#{reply_id} [data-react='🎉']")).await;
        poll("bob sees ada's reaction on his reply", EVENT, || async {
            let chip = js(
                &phone,
                "const chip = document.querySelector('#' + arguments[0] + ' .chip[data-emoji=\"🎉\"]'); \
                 return chip ? [chip.querySelector('.count').textContent, chip.getAttribute('aria-pressed')] : null;",
                vec![json!(reply_id)],
            )
            .await;
            (chip == json!(["1", "false"])).then_some(())
        })
        .await;
        eprintln!(
            "(d) edit, reply and reaction seen live: {:?}",
            step.elapsed()
        );

        // (e) A search hit is shown with its match marked, and opens its conversation at the message.
        let step = Instant::now();
        type_into(&desktop, "#search-input", "lighthous").await;
        let hit = wait_for(&desktop, "#results li a", EVENT).await;
        let marked = wait_for(&desktop, "#results mark", EVENT).await;
        assert_eq!(
            marked.text().await.expect("text").to_lowercase(),
            "lighthouse"
        );
        hit.click().await.expect("the hit can be clicked");
        let target = format!("m-{}", lighthouse["id"].as_str().expect("an id"));
        poll(
            "the hit opens its conversation at the message",
            Duration::from_secs(20),
            || async {
                let url = desktop.current_url().await.ok()?;
                let found = js(
                    &desktop,
                    "return Boolean(document.getElementById(arguments[0]));",
                    vec![json!(target)],
                )
                .await;
                (url.path() == format!("/groups/{group}") && found == json!(true)).then_some(())
            },
        )
        .await;
        eprintln!("(e) search hit opened: {:?}", step.elapsed());

        // (f) Ada's node dies while she has a draft and a message that fails to send; she is back in
        // the same conversation on another node with the draft and the message delivered once.
        desktop
            .goto(&format!("{x}{to_bob}"))
            .await
            .expect("the chat opens");
        wait_for(&desktop, "#chat", EVENT).await;
        let node = inputs
            .iter()
            .find(|node| node.url == x)
            .unwrap_or_else(|| panic!("{x} is an input node: {inputs:?}"))
            .id;
        let textarea = wait_for(&desktop, "#composer textarea", EVENT).await;
        cluster.kill(node);
        let killed = Instant::now();
        textarea
            .send_keys("sent while the node was dead\u{E007}a draft to keep")
            .await
            .expect("keys go into the message box");
        let mut seen = Vec::new();
        let (origin, delivered) = loop {
            let current = desktop.current_url().await.ok();
            let url = current
                .as_ref()
                .map(|url| url.to_string())
                .unwrap_or_default();
            let state = js(
                &desktop,
                "const banner = document.getElementById('connection'); \
                 return [banner ? banner.textContent : document.title, \
                   Array.from(document.querySelectorAll('#messages li.message .content')).slice(-2).map((n) => n.textContent)];",
                vec![],
            )
            .await;
            if seen.last() != Some(&(url.clone(), state.clone())) {
                seen.push((url.clone(), state.clone()));
            }
            if let Some(parsed) = current {
                let origin = parsed.origin().ascii_serialization();
                if origin != x
                    && parsed.path() == to_bob
                    && shows_message(&desktop, "sent while the node was dead").await
                {
                    break (origin, killed.elapsed());
                }
            }
            if killed.elapsed() >= Duration::from_secs(20) {
                let page = js(
                    &desktop,
                    "return document.body ? document.body.innerText.slice(0, 300) : '';",
                    vec![],
                )
                .await;
                let probe = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("a client")
                    .get(format!("{}{to_bob}", cluster.nameserver_url()))
                    .send()
                    .await
                    .map(|r| format!("{} {:?}", r.status(), r.headers().get("location")));
                eprintln!("page text: {page}\nnameserver answers now: {probe:?}");
            }
            assert!(
                killed.elapsed() < Duration::from_secs(20),
                "ada is not back on another node with her message within 20 s; she saw: {seen:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "time to send again after the kill: {} ms",
            delivered.as_millis()
        );
        eprintln!("ada moved from {x} to {origin}");
        let draft = js(
            &desktop,
            "return document.querySelector('#composer textarea').value;",
            vec![],
        )
        .await;
        assert_eq!(draft, json!("a draft to keep"), "the draft is restored");
        let status = js(
            &desktop,
            "return document.getElementById('connection').textContent;",
            vec![],
        )
        .await;
        assert!(
            status
                .as_str()
                .is_some_and(|text| text.starts_with("Reconnected")),
            "the status says what happened: {status}"
        );
        assert!(
            !desktop
                .current_url()
                .await
                .expect("a url")
                .as_str()
                .contains("resume"),
            "the fragment is cleared"
        );
        let (status, messages) = bob_api
            .get(&format!("/api/users/ada/{ada_tag}/messages?limit=50"))
            .await;
        assert_eq!(status, 200, "{messages}");
        let copies = messages
            .as_array()
            .expect("a list")
            .iter()
            .filter(|message| message["content"] == "sent while the node was dead")
            .count();
        assert_eq!(
            copies, 1,
            "the unsent message is delivered exactly once: {messages}"
        );
        screenshot(&desktop, dir.path(), "browser-ada-after-failover.png").await;
        screenshot(&phone, dir.path(), "browser-bob-phone.png").await;
    };
    if tokio::time::timeout(Duration::from_secs(240), scenario)
        .await
        .is_err()
    {
        panic!(
            "the scenario did not finish within 240 s; chromedriver log:\n{}",
            driver.log()
        );
    }
    let _ = desktop.close().await;
    let _ = phone.close().await;
    drop(driver);
    eprintln!("the desktop and phone test took {:?}", started.elapsed());
}
