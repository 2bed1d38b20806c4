// Rollout page: re-fetch the timeline fragment every 2 s while the rollout runs.
// Same-origin fetch: the HttpOnly session cookie goes with it; no key is handled here.
(function () {
  "use strict";
  var section = document.getElementById("live");
  if (!section || section.dataset.live !== "1") {
    return;
  }
  var src = section.dataset.src;
  var timer = null;

  function schedule() {
    timer = window.setTimeout(refresh, 2000);
  }

  function refresh() {
    fetch(src, { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) {
          window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
          return null;
        }
        return resp.ok ? resp.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          schedule();
          return;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var wrap = doc.querySelector(".timeline-wrap");
        if (!wrap) {
          schedule();
          return;
        }
        section.replaceChildren(document.importNode(wrap, true));
        section.dataset.updated = String(Date.now());
        if (wrap.dataset.over === "1") {
          section.dataset.live = "0";
        } else {
          schedule();
        }
      })
      .catch(function () {
        // The server may be restarting: try again on the next beat.
        schedule();
      });
  }

  schedule();
})();
