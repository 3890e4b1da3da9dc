export function render(path) {
  return `<!doctype html><p>rendered ${path}</p>`;
}
