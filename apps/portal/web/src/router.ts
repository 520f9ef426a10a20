import { useEffect, useState } from 'preact/hooks';

export type Route = 'signin' | 'enrol' | 'records' | 'notices' | 'self-information' | 'passkeys';
const ROUTES: readonly Route[] = ['signin', 'enrol', 'records', 'notices', 'self-information', 'passkeys'];

function current(): Route | undefined {
  const name = location.hash.replace(/^#\/?/, '');
  return (ROUTES as readonly string[]).includes(name) ? (name as Route) : undefined;
}

export function navigate(route: Route): void {
  if (location.hash !== `#/${route}`) location.hash = `#/${route}`;
}

/** Hash routing: no server route per page, and the BFF serves one index.html. */
export function useRoute(): Route | undefined {
  const [route, setRoute] = useState(current());
  useEffect(() => {
    const on = () => setRoute(current());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
