"""The open tab in the page's address, so that a reload (or a shared link) opens it again.

Clicking a top-level tab writes `?tab=<its name, lower case, dashes for spaces>`
into the address (other parameters, such as `?judgement=ID`, are kept); a page
loaded with `?tab=annotate` opens the Annotate tab once it is drawn. Served in
the page's head with the other scripts (`webapp.app.serve`).
"""

from __future__ import annotations

TAB_LINK_JS = """
<script>
(() => {
  const topTabs = () => {
    const list = document.querySelector("[role=tablist]");
    return list ? [...list.querySelectorAll("[role=tab]")] : [];
  };
  const slug = (tab) => (tab.textContent || "").trim().toLowerCase().replace(/\\s+/g, "-");
  window.addEventListener("click", (event) => {
    const tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab || !topTabs().includes(tab)) return;
    const url = new URL(window.location.href);
    url.searchParams.set("tab", slug(tab));
    window.history.replaceState(window.history.state, "", url);
  }, true);
  const wanted = new URLSearchParams(window.location.search).get("tab");
  if (!wanted) return;
  const until = Date.now() + 60000;
  const open = () => {
    const tab = topTabs().find((t) => slug(t) === wanted);
    if (tab) { if (tab.getAttribute("aria-selected") !== "true") tab.click(); return; }
    if (Date.now() < until) setTimeout(open, 100);
  };
  open();
})();
</script>
"""
