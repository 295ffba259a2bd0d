// Human-readable numbers: counts with K/M/G/T (675.1M, 118.6G) and bytes with KiB/MiB/GiB.

export function humanCount(n: number): string {
  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? String(n) : `${v.toFixed(1)}${units[i]}`;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n}B` : `${v.toFixed(1)}${units[i]}`;
}

/** 674834720 -> "674,834,720". */
export function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}
