/** Constants shared by the sync tests. */
export const DAY_MS = 24 * 60 * 60 * 1000;
