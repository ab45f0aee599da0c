// A webcam viewfinder inside a container: open it, take frames as PNG blobs, close it. A refused
// or missing camera becomes one readable sentence; the page goes on without it.
export class Webcam {
  /** Every viewfinder on the page, so switching pages can close them all. */
  static readonly all = new Set<Webcam>();
  private stream: MediaStream | null = null;
  private starting: Promise<void> | null = null;
  private readonly video = document.createElement('video');

  constructor(private readonly container: HTMLElement, private readonly onFrame: (frame: Blob) => void, private readonly onError: (e: unknown) => void) {
    this.video.playsInline = true;
    this.video.muted = true;
    Webcam.all.add(this);
  }

  /** Starts the camera and shows a viewfinder with "Take photo" and "Close" buttons. */
  start(): Promise<void> {
    if (this.stream) return Promise.resolve();
    // A second click while the browser asks for permission waits for the same camera.
    const starting = this.starting ?? this.openCamera().finally(() => (this.starting = null));
    this.starting = starting;
    return starting;
  }

  private async openCamera(): Promise<void> {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error('This browser offers no camera access here (it needs a secure https:// or localhost page).');
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (e) {
      const name = e instanceof DOMException ? e.name : '';
      if (name === 'NotAllowedError') throw new Error('The camera was refused. Allow it in the browser\'s site settings to take photos, or use image files.');
      if (name === 'NotFoundError' || name === 'OverconstrainedError') throw new Error('No camera was found. Use image files instead.');
      throw new Error(`The camera could not start: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.video.srcObject = this.stream;
    try {
      await this.video.play();
    } catch (e) {
      this.stop();
      throw new Error(`The camera could not start: ${e instanceof Error ? e.message : String(e)}`);
    }
    const take = document.createElement('button');
    take.type = 'button';
    take.className = 'primary';
    take.textContent = 'Take photo';
    take.addEventListener('click', () => void this.capture().then(this.onFrame, this.onError));
    const close = document.createElement('button');
    close.type = 'button';
    close.textContent = 'Close camera';
    close.addEventListener('click', () => this.stop());
    const bar = document.createElement('div');
    bar.className = 'row';
    bar.append(take, close);
    this.container.replaceChildren(this.video, bar);
    this.container.hidden = false;
  }

  async capture(): Promise<Blob> {
    if (!this.video.videoWidth) throw new Error('The camera has no picture yet; try again in a moment.');
    const canvas = new OffscreenCanvas(this.video.videoWidth, this.video.videoHeight);
    canvas.getContext('2d')!.drawImage(this.video, 0, 0);
    return canvas.convertToBlob({ type: 'image/png' });
  }

  stop(): void {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.container.replaceChildren();
    this.container.hidden = true;
  }
}
