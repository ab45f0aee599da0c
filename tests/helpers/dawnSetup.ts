// Setup of the Dawn test project: see pollGpuGently.
import { pollGpuGently } from '../../src/node/dawn';

pollGpuGently();
