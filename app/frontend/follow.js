// The keep panel's follower: an invisible Custom Component v2 (plain ES module, no build step).
//
// The studio (studio.js) dispatches a "vae-studio-release" event on globalThis after each slider
// release, with the released code in `detail.z`. Mounted inside the keep panel's fragment, this
// component answers with a trigger value carrying that code, which reruns the panel's fragment
// alone: the panel then shows the studio's code (its downloads are made at the click from the
// server's current code in any case).
//
// Cheap releases: it answers only while `data.follow` is true (the panel shows something made from
// the current code), and only while the panel is on screen or about to be (within MARGIN of the
// viewport). A release made while the panel is far out of view (the studio is ~2000 px above it)
// is kept, and the panel reruns with it as soon as it comes near the viewport, before it is seen.
// `data.z` is the code the panel shows: a release of that same code needs no rerun, and a kept one
// is dropped once a run of the panel shows it.
//
// A release can beat the follower's mount: the learner switched the panel's view and moved a
// slider at once, so the new view's follower was not mounted yet (nothing listened), or the old
// view's follower heard it and asked a fragment the switch removed. So at each mount the follower
// also reads the studio's last release (`__vaeStudio.released`, {rev, z}): made at the revision the
// panel shows (`data.rev`) and not the code it shows, it is a release this panel missed, and is
// followed like one; at most once per panel element and MAX_ASKS times per release, so a run that
// keeps showing another code never loops.

const FOLLOWERS = (globalThis.__vaeFollowers ??= new Map()); // data.id -> follower state
const MARGIN_PX = 600; // rerun the panel this far before it scrolls into view
const EVENT = "vae-studio-release";
const MAX_ASKS = 3; // panel reruns one release may ask for (a view switch needs two: old panel, new)

function panelOf(host) {
  // The panel's own block (each followed view wraps itself in a container); the host has no height.
  return host.parentElement?.closest("[data-testid='stVerticalBlock']") ?? host;
}

function isNear(el) {
  // Read at the release (one layout read): an IntersectionObserver's state arrives a frame late, and
  // never for an element observed before it was on the page.
  const r = el.getBoundingClientRect();
  return r.bottom > -MARGIN_PX && r.top < globalThis.innerHeight + MARGIN_PX;
}

function same(a, b) {
  return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
}

export default function mount({ data, parentElement, setTriggerValue }) {
  // One state per follower id (data.id), not per element: after a run of another fragment the page
  // may mount the same element again (a new parentElement and instance key, the same data), and a
  // release kept for later must survive that.
  const key = String(data?.id ?? "follower");
  let f = FOLLOWERS.get(key);
  if (!f) {
    f = { follow: false, set: setTriggerValue, pending: null, observer: null, host: null, shown: null, take: null,
          asked: { release: null, hosts: new WeakSet(), count: 0 } }; // the panels asked to follow the last release
    FOLLOWERS.set(key, f);
    const send = (z) => {
      f.pending = null;
      f.observer?.disconnect();
      // In a task of its own: a trigger set in the same task as the studio's goes out in the same
      // message, which reruns only the studio's fragment (this callback runs, the panel does not).
      setTimeout(() => f.set("release", { z }), 0);
    };
    const watch = () => { // until the panel comes near, then rerun it with the last release
      f.observer ??= new IntersectionObserver((entries) => {
        if (f.pending && entries.some((e) => e.isIntersecting)) send(f.pending);
      }, { rootMargin: `${MARGIN_PX}px 0px` });
      f.observer.disconnect();
      f.observer.observe(panelOf(f.host));
    };
    f.take = (z) => { // a release the panel does not show yet: rerun it now, or when it comes near
      const release = globalThis.__vaeStudio?.released ?? null;
      if (f.asked.release !== release) f.asked = { release, hosts: new WeakSet(), count: 0 };
      f.asked.hosts.add(f.host);
      f.asked.count++;
      if (isNear(panelOf(f.host))) send(z);
      else { f.pending = z; watch(); }
    };
    globalThis.addEventListener(EVENT, (event) => {
      if (!f.follow || !f.host?.isConnected || !Array.isArray(event.detail?.z)) return; // not shown: nothing to follow
      if (!same(event.detail.z, f.shown)) f.take(event.detail.z);
    });
  }
  f.host = parentElement.host ?? parentElement; // a ShadowRoot's element
  f.follow = Boolean(data && data.follow);
  f.shown = data && Array.isArray(data.z) ? data.z : null; // the code the panel shows now
  f.set = setTriggerValue;
  if (f.pending && same(f.pending, f.shown)) { // the server already shows it
    f.pending = null;
    f.observer?.disconnect();
  } else if (f.pending) {
    f.observer?.disconnect();
    f.observer?.observe(panelOf(f.host)); // the same panel, remounted
  }
  const last = globalThis.__vaeStudio?.released;
  const asked = f.asked.release === last && (f.asked.hosts.has(f.host) || f.asked.count >= MAX_ASKS);
  if (f.follow && last && !asked && last.rev === data?.rev && Array.isArray(last.z)
      && !same(last.z, f.shown) && !same(last.z, f.pending)) {
    f.take(last.z); // a release this panel missed
  }
}
