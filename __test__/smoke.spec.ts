import test from 'ava'
import { run } from '../index'

test('a default container runs a command as PID 1 with its own hostname', async (t) => {
  const r = await run(['/bin/sh', '-c', 'echo $$; hostname'], { hostname: 'box' })
  t.is(r.stdout, '1\nbox')
})
