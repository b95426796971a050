// The console's own script (no inline scripts: the Content-Security-Policy forbids them).
// A USB card scanner types into whatever has focus and presses Enter: keep the search box focused.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.querySelector("[data-autofocus]");
  if (box) box.focus();
});
