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

document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
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
