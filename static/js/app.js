// Copy buttons and confirmation prompts. Loaded as a file from our own origin, so the
// Content-Security-Policy needs no inline script.
"use strict";

function copyFrom(button) {
  const selector = button.dataset.copy || button.dataset.copyText;
  const source = document.querySelector(selector);
  if (!source) return;
  const text = "value" in source && source.tagName !== "PRE" ? source.value : source.textContent;
  navigator.clipboard.writeText(text).then(
    () => flash(button, "Copied"),
    () => {
      if (source.select) source.select();
      flash(button, "Press Ctrl+C");
    },
  );
}

function flash(button, label) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = label;
  setTimeout(() => { button.textContent = original; }, 1500);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (button) {
    event.preventDefault();
    copyFrom(button);
  }
});

// Destructive buttons ask first. The question belongs to the button that was clicked
// (event.submitter), not to its form: one form holds "Mark read" beside "Delete".
// `data-confirm-count="ids"` fills {count} (and {s}) with the boxes ticked. An accepted
// question travels as confirmed=yes; without it the server asks on a page of its own, so
// a click never deletes unasked, with or without this script.
document.addEventListener("submit", (event) => {
  const form = event.target;
  for (const stale of form.querySelectorAll("input[data-confirmed]")) stale.remove();
  const asker = event.submitter && event.submitter.dataset.confirm ? event.submitter : form;
  let question = asker.dataset.confirm;
  if (!question) return;
  const counted = asker.dataset.confirmCount;
  if (counted) {
    const count = form.querySelectorAll(`input[type=checkbox][name="${counted}"]:checked`).length;
    if (!count) return;  // nothing ticked: the server says to select first
    question = question.replace("{count}", count.toLocaleString("en")).replace("{s}", count === 1 ? "" : "s");
  }
  if (!window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const confirmed = document.createElement("input");
  Object.assign(confirmed, { type: "hidden", name: "confirmed", value: "yes" });
  confirmed.dataset.confirmed = "";
  form.append(confirmed);
});

// "Select all" for the bulk actions of a list: the header checkbox ticks the row boxes.
document.addEventListener("change", (event) => {
  const name = event.target.dataset && event.target.dataset.checkAll;
  if (!name) return;
  const form = event.target.closest("form");
  for (const box of form.querySelectorAll(`input[type=checkbox][name="${name}"]`)) {
    box.checked = event.target.checked;
  }
});

// Live updates pause while the filter form is being edited: a poll would otherwise add
// rows that the filter about to be applied may not want. htmx's own trigger filters need
// eval, which the Content-Security-Policy forbids, so the pause is an event handler here.
let editingFilters = false;
document.addEventListener("input", (event) => {
  if (event.target.closest("form.filters")) setPaused(true);
});
document.addEventListener("submit", (event) => {
  if (event.target.matches("form.filters")) setPaused(false);
});
document.addEventListener("click", (event) => {
  if (event.target.closest("form.filters a")) setPaused(false);  // Reset
});
function setPaused(paused) {
  editingFilters = paused;
  const live = document.getElementById("live");
  if (live) live.classList.toggle("paused", paused);
}
document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt.id === "live" && editingFilters) event.preventDefault();
});
document.addEventListener("htmx:afterSwap", () => setPaused(editingFilters));

// Keyboard: j / k move through the list (Enter or o opens), x ticks the row, / searches.
// On a message page j / k go to the older / newer message.
function rows() {
  return Array.from(document.querySelectorAll("#rows tr"));
}
function moveCursor(step) {
  const all = rows();
  if (!all.length) return;
  const current = all.findIndex((row) => row.classList.contains("cursor"));
  const next = Math.max(0, Math.min(all.length - 1, current === -1 ? 0 : current + step));
  all.forEach((row) => row.classList.remove("cursor"));
  all[next].classList.add("cursor");
  all[next].scrollIntoView({ block: "nearest" });
}
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const typing = event.target.closest("input, textarea, select, [contenteditable]");
  if (typing) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const cursor = document.querySelector("#rows tr.cursor");
  if (event.key === "/") {
    const search = document.getElementById("id_q");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  } else if (event.key === "j" || event.key === "k") {
    if (document.getElementById("rows")) {
      moveCursor(event.key === "j" ? 1 : -1);
    } else {
      const link = document.querySelector(event.key === "j" ? 'a[rel="next"]' : 'a[rel="prev"]');
      if (link) link.click();
    }
  } else if ((event.key === "Enter" || event.key === "o") && cursor) {
    cursor.querySelector("td.when a").click();
  } else if (event.key === "x" && cursor) {
    const box = cursor.querySelector("input[type=checkbox]");
    if (box) box.checked = !box.checked;
  }
});

// JSON tree: a key's button copies its path, in the JSON path filter's syntax.
document.addEventListener("click", (event) => {
  const key = event.target.closest("button.jk");
  if (!key) return;
  event.preventDefault();
  navigator.clipboard.writeText(key.dataset.path).then(
    () => flash(key, "copied " + key.dataset.path),
    () => flash(key, key.dataset.path),
  );
});

// The endpoint form shows only what the chosen preset uses. The server renders the page
// for the preset it knows (and a no-script button asks it for another); this switches the
// fields at once when the select changes. A field with an error is never hidden.
function showPresetFields(select) {
  const option = select.selectedOptions[0];
  const form = select.closest("form");
  if (!option || !form) return;
  const used = (option.dataset.fields || "").split(" ");
  for (const part of form.querySelectorAll("[data-preset-field]")) {
    const hasError = part.matches(".has-error") || part.querySelector(".has-error") !== null;
    part.hidden = !used.includes(part.dataset.presetField) && !hasError;
  }
  const secret = form.querySelector('[data-preset-field="secret"]');
  if (secret && option.dataset.secretLabel) {
    secret.querySelector(".label-text").textContent = option.dataset.secretLabel;
    const help = secret.querySelector(".help");
    if (help) help.textContent = option.dataset.secretHelp || "";
  }
}
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-preset-select]")) showPresetFields(event.target);
});
// A page restored from history keeps the select's last value: follow it.
for (const select of document.querySelectorAll("select[data-preset-select]")) showPresetFields(select);
// Times in the reader's own time zone. The server writes each time in its TIME_ZONE with
// the zone named, so the page reads right without JavaScript; <time datetime> carries the
// instant. Here absolute times (data-local) are rewritten in the browser's zone, named, and
// every time's tooltip gives the instant in that zone with its IANA name.
const localTimeFormat = new Intl.DateTimeFormat("en-GB", {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
});
function formatLocalTime(date) {
  const part = {};
  for (const { type, value } of localTimeFormat.formatToParts(date)) part[type] = value;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}:${part.second} ${part.timeZoneName}`;
}
function localizeTimes(root) {
  const zone = localTimeFormat.resolvedOptions().timeZone;
  for (const time of root.querySelectorAll("time[datetime]")) {
    const date = new Date(time.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    const text = formatLocalTime(date);
    const local = time.dataset.local;
    // "no-zone": a column of times whose heading names the zone (data-tz-name).
    if (local !== undefined) time.textContent = local === "no-zone" ? text.replace(/ \S+$/, "") : text;
    time.title = `${text} (${zone})`;
  }
  const zoneName = formatLocalTime(new Date()).split(" ").pop();
  for (const label of root.querySelectorAll("[data-tz-name]")) label.textContent = `(${zoneName})`;
}
document.addEventListener("DOMContentLoaded", () => localizeTimes(document));
document.addEventListener("htmx:load", (event) => localizeTimes(event.detail.elt));
