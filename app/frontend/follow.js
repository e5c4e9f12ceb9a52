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

const FOLLOWERS = (globalThis.__vaeFollowers ??= new WeakMap()); // parentElement -> follower state
const MARGIN = "600px 0px"; // rerun the panel this far before it scrolls into view
const EVENT = "vae-studio-release";

function panelOf(host) {
  // The panel's own block (keep_ui wraps itself in a container); the host alone has no height.
  return host.parentElement?.closest("[data-testid='stVerticalBlock']") ?? host;
}

export default function mount({ data, parentElement, setTriggerValue }) {
  let f = FOLLOWERS.get(parentElement);
  if (!f) {
    const host = parentElement.host ?? parentElement; // a ShadowRoot's element
    f = { follow: false, set: setTriggerValue, near: false, pending: null };
    const send = (z) => {
      f.pending = null;
      // In a task of its own: a trigger set in the same task as the studio's goes out in the same
      // message, which reruns only the studio's fragment (this callback runs, the panel does not).
      setTimeout(() => f.set("release", { z }), 0);
    };
    const observer = new IntersectionObserver((entries) => {
      f.near = entries[entries.length - 1].isIntersecting;
      if (f.near && f.pending) send(f.pending);
    }, { rootMargin: MARGIN });
    observer.observe(panelOf(host));
    const listener = (event) => {
      if (!host.isConnected) { // the panel is gone: stop listening
        globalThis.removeEventListener(EVENT, listener);
        observer.disconnect();
        return;
      }
      if (!f.follow || !Array.isArray(event.detail?.z)) return;
      if (f.near) send(event.detail.z); else f.pending = event.detail.z;
    };
    globalThis.addEventListener(EVENT, listener);
    FOLLOWERS.set(parentElement, f);
  }
  f.follow = Boolean(data && data.follow);
  f.set = setTriggerValue;
  f.pending = null; // the panel has just run: it shows the server's code, which has every release
}
