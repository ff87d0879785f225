// Tributary console: copy buttons, auto-submitting filters, the users table's
// selection helpers and its live refresh (the table body is re-fetched every 2 s,
// keeping ticked boxes ticked).
"use strict";

const REFRESH_MS = 2000;

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // Clipboard access needs a secure context: fall back to selecting the text.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(() => {
        button.textContent = "Copy";
        button.classList.remove("copied");
      }, 1500);
    });
  }
}

function setUpAutoSubmit() {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
}

function tickedLinks(body) {
  return new Set(
    [...body.querySelectorAll('input[name="link"]:checked')].map((box) => box.value),
  );
}

function updateSelectedCount() {
  const count = document.getElementById("selected-count");
  const body = document.getElementById("user-rows");
  if (!count || !body) return;
  const ticked = tickedLinks(body).size;
  count.textContent = `${ticked} selected`;
  const all = document.getElementById("select-all");
  const boxes = body.querySelectorAll('input[name="link"]');
  if (all) all.checked = boxes.length > 0 && ticked === boxes.length;
}

// A part of the page that refreshes with the table (the connection's banner).
async function refreshSlot(slot) {
  if (!slot || !slot.dataset.refresh) return;
  const response = await fetch(slot.dataset.refresh, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  slot.innerHTML = await response.text();
}

function setUpUsersTable() {
  const body = document.getElementById("user-rows");
  if (!body) return;
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of body.querySelectorAll('input[name="link"]')) box.checked = all.checked;
      updateSelectedCount();
    });
  }
  body.addEventListener("change", updateSelectedCount);
  updateSelectedCount();
  const live = document.getElementById("live-state");
  let failures = 0;
  const refresh = async () => {
    try {
      const response = await fetch(body.dataset.refresh, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (response.redirected) {
        // The session ended: show the sign-in page.
        window.location.reload();
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const html = await response.text();
      const ticked = tickedLinks(body);
      body.innerHTML = html;
      for (const box of body.querySelectorAll('input[name="link"]')) {
        box.checked = ticked.has(box.value);
      }
      updateSelectedCount();
      await refreshSlot(document.getElementById("banner-slot"));
      failures = 0;
      if (live) {
        live.textContent = "Live";
        live.classList.remove("stale");
        live.title = `Updated ${new Date().toLocaleTimeString()}`;
      }
    } catch (error) {
      failures += 1;
      if (live && failures > 1) {
        live.textContent = "Offline";
        live.classList.add("stale");
        live.title = String(error);
      }
    }
  };
  setInterval(refresh, REFRESH_MS);
}

// A form whose work takes a while (Rebuild reads the whole directory) says so while it
// runs, and cannot be sent twice.
function setUpBusyButtons() {
  for (const button of document.querySelectorAll("button[data-busy]")) {
    button.form.addEventListener("submit", () => {
      button.disabled = true;
      button.classList.add("busy");
      button.textContent = button.dataset.busy;
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpBusyButtons();
  setUpAutoSubmit();
  setUpUsersTable();
});
