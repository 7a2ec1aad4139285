import { Router } from 'express';
import { jsonBody } from '../http/json-body';
import { sendJsonList } from '../http/json-list';
import { parseId } from '../http/params';
import { customerPath } from '../http/paths';
import type { CustomersService } from './service';

export function customersRouter(customers: CustomersService): Router {
  const router = Router();

  router.post('/', ...jsonBody('16kb'), async (req, res) => {
    const customer = await customers.create(req.body);
    res.status(201).location(customerPath(customer.id)).json(customer);
  });

  router.get('/', async (_req, res) => {
    await sendJsonList(res, 'customers', customers.list());
  });

  router.get('/:customerId', async (req, res) => {
    res.json(await customers.get(parseId(req.params.customerId, 'customer')));
  });

  router.delete('/:customerId', async (req, res) => {
    await customers.remove(parseId(req.params.customerId, 'customer'));
    res.status(204).end();
  });

  return router;
}
