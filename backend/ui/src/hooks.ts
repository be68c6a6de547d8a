import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Loads data for a page; reloads when `deps` change and, with `pollMs`, every so often (the live
 * view). A failed poll keeps the last data shown.
 */
export function useApi<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const generation = useRef(0);

  useEffect(() => {
    setData(undefined);
    setError(undefined);
  }, deps);

  useEffect(() => {
    const mine = ++generation.current;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = () => {
      setLoading(true);
      load().then(
        (d) => {
          if (generation.current !== mine) return;
          setData(d);
          setError(undefined);
          setLoading(false);
          if (pollMs) timer = setTimeout(run, pollMs);
        },
        (e: unknown) => {
          if (generation.current !== mine) return;
          setError(e instanceof Error ? e : new Error(String(e)));
          setLoading(false);
          // After a 401 the token form takes over; it remounts the page once a token is given.
          if (pollMs && !(e instanceof ApiError && e.status === 401)) timer = setTimeout(run, pollMs);
        },
      );
    };
    run();
    return () => {
      generation.current++;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
