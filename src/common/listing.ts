/**
 * Keeping a long list inside a result's ~2 KB: the first `max` items, and how many more there were.
 * A launch over 64 boxes would otherwise list 64 placements and 64 started cells.
 */
export function capped<T>(items: readonly T[], max: number): { shown: T[]; more: number } {
  return items.length <= max ? { shown: [...items], more: 0 } : { shown: items.slice(0, max), more: items.length - max };
}
