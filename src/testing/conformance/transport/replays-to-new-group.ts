import { ids, Recorder, type Scenario } from './support.js'

/** A group that starts late still receives what was published before it existed. */
export const replaysToNewGroup: Scenario = {
  name: 'a new group receives the messages published before it existed',
  needs: ['replaysToNewGroup'],
  async run(s) {
    const topic = s.topic()
    const messages = Array.from({ length: 10 }, () => s.message())
    await s.h.publisher.publish(topic, messages)
    const recorder = new Recorder()
    await s.h.subscriber.subscribe(topic, recorder.handler, { group: s.group() })
    await s.eventually('the messages published before the group', () =>
      recorder.hasHandled(ids(messages)),
    )
  },
}
