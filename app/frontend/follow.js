// The keep panel's follower: an invisible Custom Component v2 (plain ES module, no build step).
//
// The studio (studio.js) dispatches a "vae-studio-release" event on globalThis after each slider
// release, with the released code in `detail.z`. Mounted inside the keep panel's fragment, this
// component answers with a trigger value carrying that code, which reruns the panel's fragment
// alone: the panel then shows, and its downloads hold, the studio's code. It answers only while
// `data.follow` is true (the panel shows something made from the current code), so a release costs
// nothing more when the panel does not depend on the code. One listener per mounted element.

const FOLLOWERS = (globalThis.__vaeFollowers ??= new WeakMap()); // parentElement -> follower state

export default function mount({ data, parentElement, setTriggerValue }) {
  let f = FOLLOWERS.get(parentElement);
  if (!f) {
    f = { follow: false, set: setTriggerValue };
    const host = parentElement.host ?? parentElement; // a ShadowRoot's element, to tell if still on the page
    const listener = (event) => {
      if (!host.isConnected) { globalThis.removeEventListener("vae-studio-release", listener); return; }
      if (!f.follow || !Array.isArray(event.detail?.z)) return;
      // In a task of its own: a trigger set in the same task as the studio's is sent in the same
      // message, which reruns only the studio's fragment (its callback runs, this panel does not).
      const z = event.detail.z;
      setTimeout(() => f.set("release", { z }), 0);
    };
    globalThis.addEventListener("vae-studio-release", listener);
    FOLLOWERS.set(parentElement, f);
  }
  f.follow = Boolean(data && data.follow);
  f.set = setTriggerValue;
}
